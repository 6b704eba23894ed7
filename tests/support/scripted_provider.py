#!/usr/bin/env python3
"""A scripted OpenAI-compatible model provider for REEF's tests.

It stands in for the paid models that cannot be called here (named as such in every test that
uses it): it speaks `/v1/chat/completions` as a provider does, behind the real LiteLLM proxy, and
answers each model name from a script instead of a model.

    scripted_provider.py SCRIPTS.json PORT [LOG.jsonl]

SCRIPTS.json maps a model name to its turns. The turn played is chosen by how many assistant
messages the request already holds, so a conversation resumed from its transcript gets the next
turn whoever asks, and the script's last turn repeats for ever after. A turn is one of

    {"call": [{"name": "search_memory", "arguments": {"query": "…"}}, …]}   tool calls
    {"say": "text"}                                                          a text answer
    {"echo_tool_result": true}   says the last tool result it was sent (what REEF answered)

Requests with `stream: true` get the same answer as server-sent chunks (usage last when
`stream_options.include_usage` asks for it), with optional "completion_tokens" (default 20; never more than the request's max_tokens, which a
provider honours) and "delay_ms" (the turn answers that much later, for tests that act while a
call is in flight). Every request is appended to LOG.jsonl (when given) for the test to read.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

scripts = json.load(open(sys.argv[1]))
port = int(sys.argv[2])
log_path = sys.argv[3] if len(sys.argv) > 3 else None
log_lock = threading.Lock()


def turn_for(model, messages):
    script = scripts.get(model) or scripts.get(model.split("/")[-1])
    if script is None:
        return None
    played = sum(1 for m in messages if m.get("role") == "assistant")
    return script[min(played, len(script) - 1)], played


def last_tool_result(messages):
    for m in reversed(messages):
        if m.get("role") == "tool":
            c = m.get("content")
            return c if isinstance(c, str) else json.dumps(c)
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            self.send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in scripts]})
        else:
            self.send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if log_path:
            with log_lock, open(log_path, "a") as f:
                f.write(json.dumps(body) + "\n")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self.send(404, {"error": {"message": "only /v1/chat/completions is scripted, not " + self.path}})
        messages = body.get("messages", [])
        found = turn_for(body.get("model", ""), messages)
        if found is None:
            return self.send(404, {"error": {"message": "no script for model %r" % body.get("model")}})
        turn, played = found
        if turn.get("delay_ms"):
            time.sleep(int(turn["delay_ms"]) / 1000)
        completion = int(turn.get("completion_tokens", 20))
        if body.get("max_tokens"):
            completion = min(completion, int(body["max_tokens"]))
        prompt = max(1, len(json.dumps(messages)) // 4)
        message = {"role": "assistant", "content": None}
        finish = "stop"
        if "call" in turn:
            message["tool_calls"] = [
                {"id": "call_%d_%d" % (played, j), "type": "function",
                 "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
                for j, c in enumerate(turn["call"])
            ]
            finish = "tool_calls"
        elif turn.get("echo_tool_result"):
            message["content"] = last_tool_result(messages)
        else:
            message["content"] = turn.get("say", "")
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        if body.get("stream"):
            return self.stream(body, played, message, finish, usage)
        self.send(200, {
            "id": "scripted-%d" % played, "object": "chat.completion", "created": 0, "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
            "system_fingerprint": "scripted-provider",
        })

    def stream(self, body, played, message, finish, usage):
        """The same answer as server-sent chunks, as OpenAI streams it (usage last when asked)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        base = {"id": "scripted-%d" % played, "object": "chat.completion.chunk", "created": 0, "model": body.get("model")}

        def chunk(delta, finish_reason=None, **extra):
            c = dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish_reason}], **extra)
            self.wfile.write(("data: %s\n\n" % json.dumps(c)).encode())
            self.wfile.flush()

        chunk({"role": "assistant", "content": ""})
        if message.get("content"):
            chunk({"content": message["content"]})
        for i, call in enumerate(message.get("tool_calls") or []):
            chunk({"tool_calls": [dict(call, index=i)]})
        chunk({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            c = dict(base, choices=[], usage=usage)
            self.wfile.write(("data: %s\n\n" % json.dumps(c)).encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
