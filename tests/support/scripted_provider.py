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
    {"cases": [{"match": "regex", …turn…}, …, {…turn…}]}
                                 the first case whose regex is found in the conversation so far
                                 (a case without "match" always is): one script for several tasks

A string argument "$match:REGEX" in a call becomes REGEX's first group as found in the
conversation (the latest match): the model reads an id from what it was told or a tool answered.

It speaks OpenAI's Responses API too (`/v1/responses`, what Codex calls): there a turn is
chosen by how many assistant turns the `input` items hold (a message, or a run of function calls),
tool calls become `function_call` items, and a stream is the API's typed events ending in
`response.completed` with the usage (`max_output_tokens` honoured).

And Gemini's `generateContent` (`/v1beta/models/MODEL:generateContent`, and
`:streamGenerateContent?alt=sse`, what Gemini CLI calls): the model is the path's, a turn is chosen
by how many `model` turns `contents` holds, tool calls become `functionCall` parts, and usage is
`usageMetadata` (`generationConfig.maxOutputTokens` honoured).

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


def resolve(turn, seen):
    """The turn to play given the conversation `seen` (its JSON): cases chosen, $match filled."""
    import re
    for _ in range(8):
        if "cases" not in turn:
            break
        turn = next((c for c in turn["cases"] if "match" not in c or re.search(c["match"], seen)), {"say": ""})
    if "call" not in turn:
        return turn

    def fill(v):
        if isinstance(v, str) and v.startswith("$match:"):
            found = re.findall(v[len("$match:"):], seen)
            return found[-1] if found else ""
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fill(x) for x in v]
        return v
    return dict(turn, call=[dict(c, arguments=fill(c.get("arguments", {}))) for c in turn["call"]])


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
        if self.path.rstrip("/").endswith("/responses"):
            return self.responses_api(body)
        if ":generateContent" in self.path or ":streamGenerateContent" in self.path:
            return self.generate_content(body)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self.send(404, {"error": {"message": "only /v1/chat/completions and /v1/responses are scripted, not " + self.path}})
        messages = body.get("messages", [])
        found = turn_for(body.get("model", ""), messages)
        if found is None:
            return self.send(404, {"error": {"message": "no script for model %r" % body.get("model")}})
        turn, played = found
        turn = resolve(turn, json.dumps(messages).replace('\\"', '"'))
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

    def responses_api(self, body):
        """One turn in the Responses API's shape, whole or as its stream of typed events."""
        items = body.get("input") if isinstance(body.get("input"), list) else []
        played, previous = 0, None
        for it in items:
            kind = "call" if it.get("type") == "function_call" else ("say" if it.get("role") == "assistant" else None)
            if kind and not (kind == "call" and previous == "call"):
                played += 1
            previous = kind
        script = scripts.get(body.get("model", "")) or scripts.get(body.get("model", "").split("/")[-1])
        if script is None:
            return self.send(404, {"error": {"message": "no script for model %r" % body.get("model")}})
        turn = resolve(script[min(played, len(script) - 1)], json.dumps(items).replace('\\"', '"'))
        if turn.get("delay_ms"):
            time.sleep(int(turn["delay_ms"]) / 1000)
        completion = int(turn.get("completion_tokens", 20))
        if body.get("max_output_tokens"):
            completion = min(completion, int(body["max_output_tokens"]))
        prompt = max(1, len(json.dumps(items) + json.dumps(body.get("instructions", ""))) // 4)
        usage = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": completion,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + completion}
        if "call" in turn:
            output = [{"type": "function_call", "id": "fc_%d_%d" % (played, j), "call_id": "call_%d_%d" % (played, j),
                       "name": c["name"], "arguments": json.dumps(c.get("arguments", {})), "status": "completed"}
                      for j, c in enumerate(turn["call"])]
        else:
            text = turn.get("say", "")
            if turn.get("echo_tool_result"):
                outs = [it.get("output") for it in items if it.get("type") == "function_call_output"]
                text = outs[-1] if outs and isinstance(outs[-1], str) else json.dumps(outs[-1] if outs else "")
            output = [{"type": "message", "id": "msg_%d" % played, "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": text, "annotations": []}]}]
        response = {"id": "resp_scripted_%d" % played, "object": "response", "created_at": 0, "status": "completed",
                    "model": body.get("model"), "output": output, "usage": usage, "error": None,
                    "incomplete_details": None, "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
        if not body.get("stream"):
            return self.send(200, response)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        seq = [0]

        def event(kind, **fields):
            fields.update(type=kind, sequence_number=seq[0])
            seq[0] += 1
            self.wfile.write(("event: %s\ndata: %s\n\n" % (kind, json.dumps(fields))).encode())
            self.wfile.flush()

        event("response.created", response=dict(response, status="in_progress", output=[], usage=None))
        for i, item in enumerate(output):
            event("response.output_item.added", output_index=i, item=dict(item, status="in_progress"))
            if item["type"] == "message":
                text = item["content"][0]["text"]
                event("response.output_text.delta", item_id=item["id"], output_index=i, content_index=0, delta=text)
                event("response.output_text.done", item_id=item["id"], output_index=i, content_index=0, text=text)
            else:
                event("response.function_call_arguments.done", item_id=item["id"], output_index=i, arguments=item["arguments"])
            event("response.output_item.done", output_index=i, item=item)
        event("response.completed", response=response)
        self.close_connection = True

    def generate_content(self, body):
        """One turn in Gemini's shape, whole or as server-sent chunks (`:streamGenerateContent`)."""
        path = self.path.split("?")[0]
        model = path.rsplit("/", 1)[-1].split(":")[0]
        contents = body.get("contents") or []
        played = sum(1 for c in contents if c.get("role") == "model")
        script = scripts.get(model) or scripts.get(model.split("/")[-1])
        if script is None:
            return self.send(404, {"error": {"code": 404, "message": "no script for model %r" % model, "status": "NOT_FOUND"}})
        turn = resolve(script[min(played, len(script) - 1)], json.dumps(contents).replace('\\"', '"'))
        if turn.get("delay_ms"):
            time.sleep(int(turn["delay_ms"]) / 1000)
        completion = int(turn.get("completion_tokens", 20))
        limit = (body.get("generationConfig") or {}).get("maxOutputTokens")
        if limit:
            completion = min(completion, int(limit))
        prompt = max(1, len(json.dumps(contents) + json.dumps(body.get("systemInstruction", ""))) // 4)
        if "call" in turn:
            parts = [{"functionCall": {"name": c["name"], "args": c.get("arguments", {})}} for c in turn["call"]]
        else:
            text = turn.get("say", "")
            if turn.get("echo_tool_result"):
                answers = [p["functionResponse"] for c in contents for p in c.get("parts", []) if "functionResponse" in p]
                text = json.dumps(answers[-1].get("response")) if answers else ""
            parts = [{"text": text}]
        answer = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                  "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion},
                  "modelVersion": model, "responseId": "scripted-%d" % played}
        if ":streamGenerateContent" not in path:
            return self.send(200, answer)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(("data: %s\r\n\r\n" % json.dumps(answer)).encode())
        self.wfile.flush()
        self.close_connection = True


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
