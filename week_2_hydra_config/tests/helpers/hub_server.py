"""A stand-in for the Hugging Face Hub on loopback, so the tests run `--source hub` with the real clients.

    with HubStandIn() as hub:                          # builds the repositories, serves them on a free port
        env = hub_env(os.environ, hub, tmp_path / "hf")  # HF_ENDPOINT=hub.url, an empty HF_HOME
        subprocess.run([sys.executable, "train.py", "--source", "hub"], env=env)
    assert hub.unknown == []                           # every request was one the stand-in knows

    python tests/helpers/hub_server.py                 # serve until Ctrl-C, to try a client by hand

`datasets`, `huggingface_hub` and `transformers`, as pinned in requirements.txt, are pointed at it
with HF_ENDPOINT only: nothing in them is patched. Standard library, pyarrow, torch and transformers only.

Endpoints served (what the pinned clients call; read from huggingface_hub's file_download.py,
hf_api.py and hf_file_system.py):
  GET       /api/agent-harnesses                              huggingface_hub's agent registry: empty
  GET       /api/{models|datasets}/{repo}[/revision/{rev}]    repository info: sha, siblings, cardData
  GET       /api/{models|datasets}/{repo}/tree/{rev}[/{dir}]  a folder listing (?recursive=true), one page
  POST      /api/{models|datasets}/{repo}/paths-info/{rev}    entries of the `paths` asked for (form or JSON)
  HEAD, GET /{repo}/resolve/{rev}/{path} (models) and /datasets/{repo}/resolve/{rev}/{path}:
            the file, with X-Repo-Commit, ETag (git blob sha1; sha256 for LFS files), X-Linked-Size,
            X-Linked-Etag for LFS files, Content-Length, and byte ranges (206) for HfFileSystem reads.
Errors are the Hub's: 404 with X-Error-Code RepoNotFound, RevisionNotFound or EntryNotFound (the
clients turn these into their own exceptions, and cache a missing file as missing). Any other path
is answered 404 and recorded in `unknown`, and printed to stderr, so a missing endpoint is visible.
Revisions: "main" and the repository's commit sha. No Xet headers: the clients download over HTTP.

The repositories it serves, and where their layouts come from: hub_repos.py.
"""

from __future__ import annotations

import http.server
import json
import socket
import sys
import threading
import urllib.parse
from pathlib import Path

from helpers.hub_repos import MODELS, WEEK_DIR, Repo, build_glue, build_model, git_blob_sha1

# ------------------------------------------------------------------------------------------------- server


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as the Hub: the clients reuse connections

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802 - the name http.server calls
        self._route("HEAD")

    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    # -- routing

    def _route(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        path, query = urllib.parse.unquote(url.path), urllib.parse.parse_qs(url.query)
        self.server.requests.append(f"{method} {path}")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method == "POST" else b""
        parts = [p for p in path.split("/") if p]
        if method == "GET" and path == "/api/agent-harnesses":
            # huggingface_hub asks once per cache for the registry of AI-agent tools it names in its
            # user agent; an empty registry is a valid answer.
            return self._json({"standardEnvVars": [], "harnesses": {}})
        if parts[:1] == ["api"] and len(parts) >= 4 and parts[1] in ("models", "datasets"):
            return self._api(method, parts[1][:-1], parts[2:], query, body)
        kind = "model"
        if parts[:1] == ["datasets"]:
            kind, parts = "dataset", parts[1:]
        if method in ("HEAD", "GET") and len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(method, kind, "/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        self._unknown(method, path)

    def _api(self, method: str, kind: str, rest: list[str], query: dict, body: bytes) -> None:
        repo = self._repo(kind, "/".join(rest[:2]))
        if repo is None:
            return
        action, args = (rest[2], rest[3:]) if len(rest) > 2 else ("revision", ["main"])
        if method == "GET" and action == "revision" and len(args) == 1:
            if self._revision(repo, args[0]):
                self._json(repo.info())
        elif method == "GET" and action == "tree" and args:
            if self._revision(repo, args[0]):
                folder = "/".join(args[1:])
                if folder and folder not in repo.folders():
                    return self._error(404, "EntryNotFound", f"{folder} does not exist", repo)
                recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
                self._json(repo.listing(folder, recursive), repo)
        elif method == "POST" and action == "paths-info" and len(args) == 1:
            if self._revision(repo, args[0]):
                self._json(self._paths_info(repo, body), repo)
        else:
            self._unknown(method, self.path)

    def _paths_info(self, repo: Repo, body: bytes) -> list[dict]:
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = json.loads(body or b"{}").get("paths", [])
        else:
            paths = urllib.parse.parse_qs(body.decode()).get("paths", [])
        paths = [paths] if isinstance(paths, str) else paths
        found = []
        for path in paths:
            path = path.strip("/")
            if path in repo.files:
                found.append(repo.entry(path))
            elif path in repo.folders():
                found.append({"type": "directory", "oid": git_blob_sha1(path.encode()), "path": path})
        return found

    def _resolve(self, method: str, kind: str, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(kind, repo_id)
        if repo is None or not self._revision(repo, revision):
            return
        if path not in repo.files:
            return self._error(404, "EntryNotFound", f"{path} does not exist on {revision}", repo)
        content = repo.files[path]
        entry = repo.entry(path)
        etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
        start, end, status = 0, len(content) - 1, 200
        ranges = self.headers.get("Range", "")
        if ranges.startswith("bytes="):
            first, _, last = ranges[len("bytes=") :].split(",")[0].partition("-")
            if first:
                start, end = int(first), min(int(last) if last else end, end)
            else:
                start = max(0, len(content) - int(last))
            status = 206
        self.send_response(status)
        self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("X-Linked-Size", str(len(content)))
        if "lfs" in entry:
            self.send_header("X-Linked-Etag", f'"{etag}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(content)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if method == "GET":
            self.wfile.write(content[start : end + 1])

    # -- answers

    def _repo(self, kind: str, repo_id: str) -> Repo | None:
        repo = self.server.repos.get((kind, repo_id))
        if repo is None:
            self._error(404, "RepoNotFound", f"{kind} {repo_id} is not on this stand-in")
        return repo

    def _revision(self, repo: Repo, revision: str) -> bool:
        if revision in ("main", repo.sha):
            return True
        self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", repo)
        return False

    def _json(self, payload: object, repo: Repo | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if repo is not None:
            self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, repo: Repo | None = None) -> None:
        data = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if repo is not None:
            self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _unknown(self, method: str, path: str) -> None:
        self.server.unknown.append(f"{method} {path}")
        print(f"HUB STAND-IN: no such endpoint: {method} {path} (answered 404)", file=sys.stderr, flush=True)
        self._error(404, "NotServedByStandIn", f"the Hub stand-in does not serve {method} {path}")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    repos: dict[tuple[str, str], Repo]
    requests: list[str]
    unknown: list[str]


class HubStandIn:
    """The stand-in Hub on 127.0.0.1:<free port>; a context manager, or start() and stop()."""

    def __init__(self, data_dir: Path | None = None, models: dict[str, dict] | None = None) -> None:
        self.data_dir = Path(data_dir or WEEK_DIR / "data")
        self.models = MODELS if models is None else models
        self._server: _Server | None = None

    def start(self) -> HubStandIn:
        repos = [build_glue(self.data_dir)] + [build_model(name, config) for name, config in self.models.items()]
        for repo in repos:
            repo.sha  # noqa: B018 - hash every file now, before the first client waits for it
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.repos = {(repo.kind, repo.repo_id): repo for repo in repos}
        self._server.requests, self._server.unknown = [], []
        threading.Thread(target=self._server.serve_forever, name="hub-stand-in", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HubStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[str]:
        """Every request so far, as 'METHOD /path'."""
        return self._server.requests if self._server else []

    @property
    def unknown(self) -> list[str]:
        """Requests for endpoints the stand-in does not serve (answered 404): should stay empty."""
        return self._server.unknown if self._server else []

    def repo(self, kind: str, repo_id: str) -> Repo:
        assert self._server is not None
        return self._server.repos[(kind, repo_id)]

    def env(self, home: Path) -> dict[str, str]:
        """What a command needs to use this stand-in as its Hub, with an empty Hugging Face cache in `home`."""
        return {
            "HF_ENDPOINT": self.url,
            "HF_HOME": str(home),
            # transformers, given a repository with pytorch_model.bin and no model.safetensors (ELECTRA-small),
            # starts a background thread that asks Hugging Face's conversion Space for a safetensors copy:
            # https://safetensors-convert.hf.space, not HF_ENDPOINT. Its switch for test runs keeps it off.
            "DISABLE_SAFETENSORS_CONVERSION": "1",
        }


def hub_env(base: dict[str, str], hub: HubStandIn, home: Path) -> dict[str, str]:
    """`base` (e.g. os.environ) without the offline switches the test session sets, plus the stand-in's settings."""
    offline = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "MLOPS_OFFLINE_DATA")
    return {**{k: v for k, v in base.items() if k not in offline}, **hub.env(home)}


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_shared: HubStandIn | None = None
_lock = threading.Lock()


def shared_hub() -> HubStandIn:
    """One stand-in per test process (building the repositories takes a few seconds): started once, on first use."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = HubStandIn().start()
    return _shared


if __name__ == "__main__":  # python tests/helpers/hub_server.py: serve until Ctrl-C, to try a client by hand
    with HubStandIn() as hub:
        print(f"HF_ENDPOINT={hub.url}", flush=True)
        threading.Event().wait()
