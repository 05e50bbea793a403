"""A tiny stand-in for the Hugging Face Hub's ``resolve`` endpoint, on 127.0.0.1 port 0.

It answers what ``huggingface_hub.hf_hub_download`` asks (read off its source): a HEAD on
``/{repo}/resolve/{revision}/{file}`` that must carry ``X-Repo-Commit`` and an ``ETag``
(``X-Linked-Etag`` / ``X-Linked-Size`` on the LFS redirect), then a GET of the location,
with ``Range: bytes=N-`` when resuming. Any other path is a 404, as the Hub answers (whymoji's
reachability probe asks ``HEAD /``). Failures are switchable per file: a status code to
answer with, a first GET cut off halfway through the body, a HEAD that is never answered, or
a body that stops halfway and never continues (the stalls end when the hub stops). ``silent``
accepts every connection and answers no request at all. ``trickle_s`` sends every body in 1 KB
pieces with that pause between them: slow, but never stalled.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>[^/?]+)$")
_CDN = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$")


@dataclass
class FakeHub:
    """Serves ``files`` (name -> bytes) for ``repo_id``; records every request."""

    files: dict[str, bytes]
    repo_id: str = "test/deepmoji"
    lfs: frozenset[str] = frozenset({"pytorch_model.bin"})
    fail_head: dict[str, int] = field(default_factory=dict)
    fail_get: dict[str, int] = field(default_factory=dict)
    cut_first_get: set[str] = field(default_factory=set)
    stall_head: set[str] = field(default_factory=set)
    stall_body: set[str] = field(default_factory=set)
    silent: bool = False
    trickle_s: float = 0.0
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()
        self._by_sha = {hashlib.sha256(data).hexdigest(): name for name, data in self.files.items()}

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start() the fake Hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # stalled requests end
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def count(self, method: str, filename: str) -> int:
        return sum(1 for m, path, _ in self.requests if m == method and path.endswith(filename))

    @staticmethod
    def from_folder(folder: Path, **options) -> FakeHub:
        files = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
        return FakeHub(files=files, **options)


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:
            self._answer(with_body=False)

        def do_GET(self) -> None:
            self._answer(with_body=True)

        def _answer(self, with_body: bool) -> None:
            hub.requests.append((self.command, self.path, self.headers.get("Range")))
            if hub.silent:
                hub._stopping.wait()
                self.close_connection = True
                return
            resolve = _RESOLVE.match(self.path)
            cdn = _CDN.match(self.path)
            if resolve and resolve["repo"] == hub.repo_id and resolve["filename"] in hub.files:
                self._resolve(resolve["filename"], with_body)
            elif cdn and cdn["sha"] in hub._by_sha:
                self._content(hub._by_sha[cdn["sha"]], with_body)
            else:
                self._status(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT})

        def _resolve(self, filename: str, with_body: bool) -> None:
            if not with_body and filename in hub.stall_head:
                hub._stopping.wait()
                return
            if not with_body and filename in hub.fail_head:
                return self._status(hub.fail_head[filename])
            if filename not in hub.lfs:
                return self._content(filename, with_body)
            data = hub.files[filename]
            sha = hashlib.sha256(data).hexdigest()
            self._status(
                302,
                {
                    "Location": f"/cdn/{sha}",
                    "X-Repo-Commit": COMMIT,
                    "X-Linked-Etag": f'"{sha}"',
                    "X-Linked-Size": str(len(data)),
                    "ETag": '"pointer-etag"',
                },
            )

        def _content(self, filename: str, with_body: bool) -> None:
            if with_body and filename in hub.fail_get:
                return self._status(hub.fail_get[filename])
            data = hub.files[filename]
            start = _range_start(self.headers.get("Range"))
            cut = with_body and filename in hub.cut_first_get
            if cut:
                hub.cut_first_get.discard(filename)
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            if cut:
                self.send_header("Connection", "close")
            self.end_headers()
            if not with_body:
                return
            body = data[start:]
            if filename in hub.stall_body:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                hub._stopping.wait()
                self.close_connection = True
                return
            if hub.trickle_s:
                for offset in range(0, len(body), 1024):
                    self.wfile.write(body[offset : offset + 1024])
                    self.wfile.flush()
                    if hub._stopping.wait(hub.trickle_s):
                        return
                return
            if cut:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def _status(self, code: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def _range_start(header: str | None) -> int:
    match = re.fullmatch(r"bytes=(\d+)-", header or "")
    return int(match[1]) if match else 0
