"""A webhook receiver for the test suite: every delivery is checked with the
official Standard Webhooks library (not with the console's own code).

Usage: receiver.py PORT SECRET OUT_FILE [DELAY_SECONDS]

Each verified delivery is appended to OUT_FILE as one JSON line
{"ok": true, "webhook_id": ..., "event": {...}}; a delivery that fails
verification as {"ok": false, "error": ...} and is answered 401. Verified
deliveries are answered 204. Prints "listening" once it accepts connections.
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

PORT = int(sys.argv[1])
WEBHOOK = Webhook(sys.argv[2])
OUT = open(sys.argv[3], "a", buffering=1)
# How long each delivery takes to answer (a slow receiver keeps one in flight).
DELAY = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        time.sleep(DELAY)
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        try:
            event = WEBHOOK.verify(body, headers)
        except WebhookVerificationError as e:
            OUT.write(json.dumps({"ok": False, "error": str(e)}) + "\n")
            self.send_response(401)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        OUT.write(json.dumps({"ok": True, "webhook_id": headers.get("webhook-id"), "event": event}) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, format, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("listening", flush=True)
server.serve_forever()
