#!/usr/bin/env python3
"""A webhook receiver for REEF's tests, written the way an operator's would be: it verifies
X-Reef-Signature (t=<unix>,v1=<hex HMAC-SHA256 of "t.body">) with Python's own hmac, refuses
stale or forged deliveries, and records each verified event once (by X-Reef-Event-Id).

usage: webhook_receiver.py PORT SECRET OUT_FILE [DELAY_SECONDS]
Each verified delivery appends one JSON line to OUT_FILE: {"id", "kind", "dup", "links"}.
"""
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, SECRET, OUT = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
# Answer this long after recording a delivery: lets a test kill REEF while it waits for the answer.
DELAY = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
seen = set()


def verify(header, body):
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t = int(parts["t"])
    expected = hmac.new(SECRET, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts.get("v1", "")):
        return "bad signature"
    if abs(time.time() - t) > 300:
        return "stale"
    return None


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        problem = verify(self.headers.get("X-Reef-Signature", ""), body)
        if problem:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(problem.encode())
            return
        event_id = self.headers.get("X-Reef-Event-Id")
        dup = event_id in seen
        seen.add(event_id)
        with open(OUT, "a") as f:
            try:
                links = json.loads(body).get("links")
            except ValueError:
                links = None
            f.write(json.dumps({"id": event_id, "kind": self.headers.get("X-Reef-Event"), "dup": dup, "links": links}) + "\n")
        time.sleep(DELAY)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
