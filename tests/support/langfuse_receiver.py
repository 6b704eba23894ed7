#!/usr/bin/env python3
"""A stand-in for Langfuse's ingestion endpoint, for REEF's tests (Langfuse's server cannot be
installed here). It does what the real `POST /api/public/ingestion` does with a batch: checks
HTTP Basic auth with the project's public and secret key (401 otherwise), checks every event has
an id, a type it knows, a timestamp and a body (a bad one is reported in `errors`, as Langfuse
does), and answers 207 with `successes` and `errors`.

usage: langfuse_receiver.py PORT PUBLIC_KEY SECRET_KEY OUT_FILE
Each accepted event is appended to OUT_FILE as one JSON line.
"""
import base64
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, PUBLIC, SECRET, OUT = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
TYPES = {"trace-create", "span-create", "span-update", "generation-create", "generation-update", "event-create", "score-create"}
EXPECTED = "Basic " + base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/api/public/ingestion":
            return self.answer(404, {"message": "not found"})
        if self.headers.get("Authorization") != EXPECTED:
            return self.answer(401, {"message": "Invalid credentials"})
        try:
            batch = json.loads(body)["batch"]
        except (ValueError, KeyError, TypeError):
            return self.answer(400, {"message": "body must be {\"batch\": [...]}"})
        successes, errors = [], []
        with open(OUT, "a") as f:
            for e in batch:
                ok = isinstance(e, dict) and e.get("id") and e.get("type") in TYPES and e.get("timestamp") and isinstance(e.get("body"), dict)
                if ok:
                    f.write(json.dumps(e) + "\n")
                    successes.append({"id": e["id"], "status": 201})
                else:
                    errors.append({"id": (e or {}).get("id"), "status": 400, "message": "invalid event"})
        self.answer(207, {"successes": successes, "errors": errors})


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
