"""Verifies a delivered webhook with the independent Standard Webhooks implementation.

Usage: python3 verify_signature.py SECRET HEADERS_JSON < BODY   -- exits 0 when it verifies.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

secret, headers = sys.argv[1], json.loads(sys.argv[2])
body = sys.stdin.buffer.read()
try:
    Webhook(secret).verify(body, headers)
except Exception as e:  # the library raises WebhookVerificationError
    print(f"not verified: {e}", file=sys.stderr)
    sys.exit(1)
print("verified")
