#!/usr/bin/env python3
"""A development webhook receiver: answers every POST 200 and appends one JSON line per request
to the file given (headers, body, and whether the Standard Webhooks signature verifies with the
secret in $WEBHOOK_SECRET, checked here with Python's hmac, independently of Pulse).

    WEBHOOK_SECRET=whsec_... scripts/webhook-receiver.py 127.0.0.1:9300 .pulse/webhooks.jsonl
"""
import base64, hashlib, hmac, json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verifies(secret, msg_id, timestamp, body, header):
    if not secret.startswith("whsec_"):
        return False
    key = base64.b64decode(secret[len("whsec_"):])
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()
    return any(part.split(",", 1)[-1] == expected for part in header.split(" "))


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        h = self.headers
        record = {
            "path": self.path,
            "webhook-id": h.get("webhook-id"),
            "webhook-timestamp": h.get("webhook-timestamp"),
            "webhook-signature": h.get("webhook-signature"),
            "signature_verified": verifies(os.environ.get("WEBHOOK_SECRET", ""), h.get("webhook-id", ""),
                                           h.get("webhook-timestamp", ""), body, h.get("webhook-signature", "")),
            "body": json.loads(body or b"null"),
        }
        with open(sys.argv[2], "a") as out:
            out.write(json.dumps(record) + "\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


host, port = sys.argv[1].rsplit(":", 1)
ThreadingHTTPServer((host, int(port)), Handler).serve_forever()
