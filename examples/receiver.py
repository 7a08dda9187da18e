#!/usr/bin/env python3
"""A webhook receiver for trying Switchboard out: prints every request it gets and answers 200.

Usage: python3 examples/receiver.py [PORT]   (default 9000)
"""
import http.server
import json
import sys


class Receiver(http.server.BaseHTTPRequestHandler):
    def _handle(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        try:
            body = json.dumps(json.loads(body), indent=2)
        except ValueError:
            pass
        print(f"--- {self.command} {self.path}  webhook-id={self.headers.get('webhook-id')}")
        print(body, flush=True)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _handle

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    print(f"receiving on http://127.0.0.1:{port}/", flush=True)
    http.server.HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
