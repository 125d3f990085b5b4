"""A loopback stand-in for the Hugging Face Hub: just the routes `huggingface_hub.snapshot_download` and
`HfApi.model_info(files_metadata=True)` call, for one repo at one commit. Honours HTTP Range (resume),
logs every request, and can send the large files slowly so a test can kill a download mid-file."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

SLOW_CHUNK = 64 * 1024


@dataclass
class FakeRepo:
    repo_id: str
    sha: str
    files: dict[str, bytes]
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range header)
    slow_bytes_per_s: int | None = None  # throttle GETs of files above SLOW_CHUNK
    sent: dict[str, int] = field(default_factory=dict)  # bytes sent per file, for "mid-file" kills

    def info(self) -> dict:
        def sibling(name: str, data: bytes) -> dict:
            entry = {"rfilename": name, "size": len(data), "blobId": hashlib.sha1(data).hexdigest()}
            if len(data) > SLOW_CHUNK:
                entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            return entry
        return {"id": self.repo_id, "modelId": self.repo_id, "sha": self.sha, "private": False, "gated": False,
                "disabled": False, "tags": [], "siblings": [sibling(n, d) for n, d in sorted(self.files.items())]}

    def tree(self) -> list[dict]:
        """The tree API's entries (huggingface_hub 1.x lists files this way; 0.x reads info()'s siblings)."""
        entries = []
        for sibling in self.info()["siblings"]:
            entry = {"type": "file", "oid": sibling["blobId"], "size": sibling["size"], "path": sibling["rfilename"]}
            if "lfs" in sibling:
                entry["lfs"] = {"oid": sibling["lfs"]["sha256"], "size": sibling["size"], "pointerSize": 134}
            entries.append(entry)
        return entries

    def etag(self, name: str) -> str:
        data = self.files[name]
        return hashlib.sha256(data).hexdigest() if len(data) > SLOW_CHUNK else hashlib.sha1(data).hexdigest()


def _handler(repo: FakeRepo):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # the test reads repo.requests instead
            pass

        def _json(self, body, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _route(self) -> None:
            path = unquote(urlparse(self.path).path)
            repo.requests.append((self.command, path, self.headers.get("Range")))
            for prefix, body in ((f"/api/models/{repo.repo_id}/revision/", repo.info),
                                 (f"/api/models/{repo.repo_id}/tree/", repo.tree)):
                if path.startswith(prefix):
                    revision = path[len(prefix):]
                    if revision not in (repo.sha, "main"):
                        return self._json({"error": f"Invalid rev id: {revision}"}, 404)
                    return self._json(body())
            for revision in (repo.sha, "main"):
                prefix = f"/{repo.repo_id}/resolve/{revision}/"
                if path.startswith(prefix) and path[len(prefix):] in repo.files:
                    return self._file(path[len(prefix):])
            self._json({"error": "Entry not found"}, 404)

        def _file(self, name: str) -> None:
            data = repo.files[name]
            start = 0
            if self.headers.get("Range", "").startswith("bytes="):
                start = int(self.headers["Range"][len("bytes="):].split("-")[0])
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("ETag", f'"{repo.etag(name)}"')
            self.send_header("X-Repo-Commit", repo.sha)
            if len(data) > SLOW_CHUNK:
                self.send_header("X-Linked-Etag", f'"{repo.etag(name)}"')
                self.send_header("X-Linked-Size", str(len(data)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if self.command == "HEAD":
                return
            slow = repo.slow_bytes_per_s and len(data) > SLOW_CHUNK
            for offset in range(start, len(data), SLOW_CHUNK):
                self.wfile.write(data[offset:offset + SLOW_CHUNK])
                repo.sent[name] = offset + min(SLOW_CHUNK, len(data) - offset)
                if slow:
                    self.wfile.flush()
                    time.sleep(SLOW_CHUNK / repo.slow_bytes_per_s)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            try:
                self._route()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client was killed mid-file: that is the point of some tests

        do_HEAD = do_GET  # noqa: N815

    return Handler


class FakeHub:
    """`with FakeHub(repo) as hub:` serves `repo` on a free loopback port at `hub.endpoint`."""

    def __init__(self, repo: FakeRepo):
        self.repo = repo
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(repo))
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def tiny_repo(model_dir: Path, repo_id: str, sha: str) -> FakeRepo:
    """A FakeRepo holding every file of `model_dir` (e.g. the embedded hunyuan-tiny)."""
    files = {str(p.relative_to(model_dir)): p.read_bytes() for p in sorted(model_dir.rglob("*")) if p.is_file()}
    return FakeRepo(repo_id, sha, files)
