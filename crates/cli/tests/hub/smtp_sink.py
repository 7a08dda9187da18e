"""A real SMTP server for the tests (aiosmtpd): stores each message in a folder as N.eml.

Usage: python3 smtp_sink.py DIR   -- prints "port N" once it listens, then serves until killed.
"""
import os
import socket
import sys
import time

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.folder, f"{self.count:04}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(b"X-Rcpt-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode())
        os.rename(path + ".tmp", path)
        return "250 OK"


if __name__ == "__main__":
    # aiosmtpd checks it is up by connecting to its port, so it needs a real one: take a free one.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    controller = Controller(Store(sys.argv[1]), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"port {port}", flush=True)
    while True:
        time.sleep(3600)
