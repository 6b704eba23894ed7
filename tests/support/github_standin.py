#!/usr/bin/env python3
"""A STAND-IN for GitHub's REST API (github.com cannot be reached from here), for REEF's tests of
pull requests. It answers the endpoints REEF uses with documents shaped as GitHub documents them
(docs.github.com/rest: pulls, pulls/comments, pulls/reviews, checks/runs, API version
2022-11-28), including fields REEF does not read, and behaves as GitHub does where REEF depends
on it:
- a request without `Authorization: Bearer <TOKEN>` gets 401 {"message": "Bad credentials"};
- opening a second open pull request for the same head gets 422 "A pull request already exists";
- a pull request's head is the branch's commit in the bare repository (git rev-parse), so it
  follows pushes as GitHub's does;
- lists take per_page and page and answer a Link header with rel="next".
The test plays the people and the CI on the forge through /_standin/ (review comments, reviews,
check runs, a merge, failures of the next N API calls) and reads what REEF asked for.

usage: github_standin.py PORT TOKEN OWNER/REPO BARE_REPOSITORY
"""
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PORT, TOKEN, REPO, BARE = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
OWNER = REPO.split("/")[0]
BASE = f"http://127.0.0.1:{PORT}"
HTML = "https://github.com"
lock = threading.Lock()
state = {"pulls": [], "comments": [], "conversation": [], "reviews": [], "runs": [], "requests": [], "fail_next": 0, "next_id": 1000}


def user(login):
    return {"login": login, "id": abs(hash(login)) % 100000, "node_id": "MDQ6VXNlcjE=", "type": "User", "site_admin": False,
            "avatar_url": "https://github.com/images/error/octocat_happy.gif", "url": f"{BASE}/users/{login}"}


def branch_sha(branch):
    r = subprocess.run(["git", "--git-dir", BARE, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], capture_output=True, text=True)
    return r.stdout.strip() or None


def pull_doc(p):
    head_sha = branch_sha(p["head"]) or p.get("head_sha", "")
    n = p["number"]
    return {
        "url": f"{BASE}/repos/{REPO}/pulls/{n}", "id": 1296269 + n, "node_id": "MDExOlB1bGxSZXF1ZXN0MQ==",
        "html_url": f"{HTML}/{REPO}/pull/{n}", "diff_url": f"{HTML}/{REPO}/pull/{n}.diff", "number": n,
        "state": p["state"], "locked": False, "title": p["title"], "user": user("reef-bot"), "body": p["body"],
        "labels": [], "milestone": None, "active_lock_reason": None, "created_at": "2026-12-01T05:00:00Z",
        "updated_at": "2026-12-01T05:00:00Z", "closed_at": p.get("closed_at"), "merged_at": p.get("merged_at"),
        "merge_commit_sha": p.get("merge_commit_sha"), "assignee": None, "draft": False,
        "head": {"label": f"{OWNER}:{p['head']}", "ref": p["head"], "sha": head_sha, "user": user(OWNER), "repo": {"full_name": REPO}},
        "base": {"label": f"{OWNER}:{p['base']}", "ref": p["base"], "sha": branch_sha(p["base"]) or "", "user": user(OWNER), "repo": {"full_name": REPO}},
        "author_association": "OWNER", "auto_merge": None, "merged": p.get("merged_at") is not None, "mergeable": True,
        "comments": 0, "review_comments": len([c for c in state["comments"] if c["pr"] == n]), "commits": 1,
    }


def comment_doc(c):
    return {
        "url": f"{BASE}/repos/{REPO}/pulls/comments/{c['id']}", "pull_request_review_id": 42, "id": c["id"],
        "node_id": "MDI0OlB1bGxSZXF1ZXN0UmV2aWV3Q29tbWVudDEw", "diff_hunk": "@@ -1,2 +1,2 @@", "path": c["path"],
        "position": 1, "original_position": 4, "commit_id": c.get("commit_id", ""), "original_commit_id": c.get("commit_id", ""),
        "in_reply_to_id": None, "user": user(c["login"]), "body": c["body"], "created_at": "2026-12-01T05:01:00Z",
        "updated_at": "2026-12-01T05:01:00Z", "html_url": f"{HTML}/{REPO}/pull/{c['pr']}#discussion-diff-{c['id']}",
        "pull_request_url": f"{BASE}/repos/{REPO}/pulls/{c['pr']}", "author_association": c.get("association", "COLLABORATOR"),
        "start_line": None, "original_start_line": None, "start_side": None, "line": c["line"], "original_line": c["line"], "side": "RIGHT",
    }


def issue_comment_doc(c):
    return {
        "id": c["id"], "node_id": "MDEyOklzc3VlQ29tbWVudDE=", "url": f"{BASE}/repos/{REPO}/issues/comments/{c['id']}",
        "html_url": f"{HTML}/{REPO}/pull/{c['pr']}#issuecomment-{c['id']}", "body": c["body"], "user": user(c["login"]),
        "created_at": "2026-12-01T05:01:30Z", "updated_at": "2026-12-01T05:01:30Z",
        "issue_url": f"{BASE}/repos/{REPO}/issues/{c['pr']}", "author_association": c.get("association", "COLLABORATOR"),
    }


def review_doc(r):
    return {
        "id": r["id"], "node_id": "MDE3OlB1bGxSZXF1ZXN0UmV2aWV3ODA=", "user": user(r["login"]), "body": r["body"],
        "state": r["state"], "html_url": f"{HTML}/{REPO}/pull/{r['pr']}#pullrequestreview-{r['id']}",
        "pull_request_url": f"{BASE}/repos/{REPO}/pulls/{r['pr']}", "submitted_at": "2026-12-01T05:02:00Z",
        "commit_id": r.get("commit_id", ""), "author_association": r.get("association", "COLLABORATOR"),
    }


def run_doc(r):
    return {
        "id": r["id"], "head_sha": r["sha"], "node_id": "MDg6Q2hlY2tSdW40", "external_id": "", "name": r["name"],
        "url": f"{BASE}/repos/{REPO}/check-runs/{r['id']}", "html_url": f"{HTML}/{REPO}/runs/{r['id']}",
        "details_url": "https://ci.example.com/", "status": r["status"], "conclusion": r.get("conclusion"),
        "started_at": "2026-12-01T05:00:00Z", "completed_at": "2026-12-01T05:03:00Z",
        "output": {"title": r.get("title"), "summary": r.get("summary"), "text": None, "annotations_count": 0, "annotations_url": ""},
        "check_suite": {"id": 5}, "app": {"id": 1, "slug": "octoapp", "name": "Octocat App"}, "pull_requests": [],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        data = (json.dumps(body) if not isinstance(body, bytes) else body.decode()).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def page(self, items, q):
        per = min(int(q.get("per_page", ["30"])[0]), 100)
        page = int(q.get("page", ["1"])[0])
        chunk = items[(page - 1) * per: page * per]
        headers = []
        if page * per < len(items):
            u = urlparse(self.path)
            rest = {k: v[0] for k, v in q.items() if k != "page"}
            qs = "&".join(f"{k}={v}" for k, v in rest.items())
            headers.append(("Link", f'<{BASE}{u.path}?{qs}&page={page + 1}>; rel="next"'))
        self.answer(200, chunk, headers)

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        u = urlparse(self.path)
        q = parse_qs(u.query)
        if u.path.startswith("/_standin/"):
            return self.control(method, u.path[len("/_standin/"):])
        with lock:
            state["requests"].append({"method": method, "path": self.path,
                                      "auth": self.headers.get("Authorization") == f"Bearer {TOKEN}",
                                      "accept": self.headers.get("Accept"), "version": self.headers.get("X-GitHub-Api-Version")})
            if state["fail_next"] > 0:
                state["fail_next"] -= 1
                return self.answer(502, b"<html><body>502 Bad Gateway</body></html>")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.answer(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        prefix = f"/repos/{REPO}"
        if not u.path.startswith(prefix + "/"):
            return self.answer(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        path = u.path[len(prefix):]
        with lock:
            if path == "/pulls" and method == "GET":
                head = q.get("head", [None])[0]
                st = q.get("state", ["open"])[0]
                items = [pull_doc(p) for p in state["pulls"]
                         if (st == "all" or p["state"] == st) and (head is None or f"{OWNER}:{p['head']}" == head)]
                return self.page(items, q)
            if path == "/pulls" and method == "POST":
                b = self.body()
                if not all(k in b for k in ("title", "head", "base")):
                    return self.answer(422, {"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "missing_field"}]})
                if any(p["head"] == b["head"] and p["state"] == "open" for p in state["pulls"]):
                    return self.answer(422, {"message": "Validation Failed", "errors": [
                        {"resource": "PullRequest", "code": "custom", "message": f"A pull request already exists for {OWNER}:{b['head']}."}]})
                if branch_sha(b["head"]) is None:
                    return self.answer(422, {"message": "Validation Failed", "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}]})
                p = {"number": len(state["pulls"]) + 1, "state": "open", "title": b["title"], "body": b.get("body", ""),
                     "head": b["head"], "base": b["base"]}
                state["pulls"].append(p)
                return self.answer(201, pull_doc(p), [("Location", f"{BASE}/repos/{REPO}/pulls/{p['number']}")])
            m = re.fullmatch(r"/pulls/(\d+)(/comments|/reviews)?", path)
            if m and method == "GET":
                n = int(m.group(1))
                p = next((p for p in state["pulls"] if p["number"] == n), None)
                if p is None:
                    return self.answer(404, {"message": "Not Found"})
                if m.group(2) == "/comments":
                    return self.page([comment_doc(c) for c in state["comments"] if c["pr"] == n], q)
                if m.group(2) == "/reviews":
                    return self.page([review_doc(r) for r in state["reviews"] if r["pr"] == n], q)
                return self.answer(200, pull_doc(p))
            m = re.fullmatch(r"/issues/(\d+)/comments", path)
            if m and method == "GET":
                n = int(m.group(1))
                return self.page([issue_comment_doc(c) for c in state["conversation"] if c["pr"] == n], q)
            m = re.fullmatch(r"/commits/([0-9a-f]{40})/check-runs", path)
            if m and method == "GET":
                runs = [run_doc(r) for r in state["runs"] if r["sha"] == m.group(1)]
                return self.answer(200, {"total_count": len(runs), "check_runs": runs})
        return self.answer(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})

    def control(self, method, what):
        with lock:
            if what == "state":
                out = {k: v for k, v in state.items()}
                out["pulls"] = [dict(p, head_sha=branch_sha(p["head"])) for p in state["pulls"]]
                return self.answer(200, out)
            b = self.body()
            state["next_id"] += 1
            i = state["next_id"]
            if what == "review_comment":
                state["comments"].append(dict(b, id=i))
            elif what == "conversation":
                state["conversation"].append(dict(b, id=i))
            elif what == "review":
                state["reviews"].append(dict(b, id=i))
            elif what == "check_run":
                state["runs"].append(dict(b, id=i, status="completed"))
            elif what == "merge":
                p = next(p for p in state["pulls"] if p["number"] == b["pr"])
                p.update(state="closed", merged_at="2026-12-01T06:00:00Z", closed_at="2026-12-01T06:00:00Z",
                         merge_commit_sha=b["merge_commit_sha"], head_sha=branch_sha(p["head"]))
            elif what == "fail_next":
                state["fail_next"] = int(b["count"])
            else:
                return self.answer(404, {"message": f"no control {what}"})
            return self.answer(200, {"id": i})


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
