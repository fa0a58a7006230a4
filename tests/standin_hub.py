"""A local stand-in for the Hugging Face Hub on 127.0.0.1, for tests of the download path (none is reachable here).

It serves model folders at commits of our choosing through the endpoints huggingface_hub (read in its
_snapshot_download.py, file_download.py, hf_api.py and utils/_http.py) calls to fetch them:

  GET  /api/models/<repo>/revision/<rev>    model_info: {"id", "sha" (the commit), "siblings": [{"rfilename",
                                            "size", "blobId", "lfs": {"sha256", "size", "pointerSize"}}]}
  GET  /api/models/<repo>/tree/<rev>        list_repo_tree (snapshot_download's file list): [{"type": "file",
                                            "path", "size", "oid", "lfs": {"oid", "size", "pointerSize"}}]
  HEAD /<repo>/resolve/<rev>/<path>         the file's metadata headers: X-Repo-Commit, ETag (the git blob SHA-1),
                                            Content-Length; for an LFS file (weights) also X-Linked-Etag (its
                                            SHA-256) and X-Linked-Size, which the cache names its blob by
  GET  /<repo>/resolve/<rev>/<path>         the same headers and the content

<rev> is a branch or tag of the repository, or its commit. An unknown repository is a 404 with X-Error-Code
RepoNotFound, an unknown revision RevisionNotFound, an unknown file EntryNotFound, as the Hub answers. Every
request's method and path is recorded in `requests`.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from model_fixtures import LFS_SUFFIXES, git_blob_id


@dataclass
class Repo:
    commit: str
    files: dict[str, Path]  # repository path -> the file served for it
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit


class StandInHub:
    """Model repositories served on 127.0.0.1 while `serve()` runs; point HF_ENDPOINT at the URL it yields."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []

    def add(self, repo_id: str, folder: Path, commit: str, refs: tuple[str, ...] = ("main",),
            skip: tuple[str, ...] = ()) -> None:
        """Serve every file of `folder` (but those named in `skip`) as `repo_id` at `commit`, which `refs` name."""
        files = {p.relative_to(folder).as_posix(): p for p in sorted(Path(folder).rglob("*")) if p.is_file()}
        self.repos[repo_id] = Repo(commit, {k: v for k, v in files.items() if k not in skip},
                                   {ref: commit for ref in refs})

    def _find(self, repo_id: str, revision: str) -> tuple[Repo | None, str | None]:
        """(the repository, its commit at `revision`); (None, error code) when there is no such one."""
        repo = self.repos.get(repo_id)
        if repo is None:
            return None, "RepoNotFound"
        if revision != repo.commit and revision not in repo.refs:
            return None, "RevisionNotFound"
        return repo, None

    def _entry(self, name: str, path: Path, tree: bool) -> dict:
        """A file as the tree listing (`tree`) or model_info's siblings describe it."""
        data = path.read_bytes()
        if tree:
            entry, lfs_key = {"type": "file", "path": name, "size": len(data), "oid": git_blob_id(data)}, "oid"
        else:
            entry, lfs_key = {"rfilename": name, "size": len(data), "blobId": git_blob_id(data)}, "sha256"
        if name.endswith(LFS_SUFFIXES):
            entry["lfs"] = {lfs_key: hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def _answer(self, method: str, raw_path: str) -> tuple[int, dict[str, str], bytes]:
        path = urlsplit(raw_path).path
        if path.startswith("/api/models/"):
            rest = path[len("/api/models/"):]
            for kind in ("/revision/", "/tree/"):
                if kind in rest:
                    repo_id, revision = rest.split(kind, 1)
                    repo, error = self._find(repo_id, unquote(revision))
                    if repo is None:
                        return 404, {"X-Error-Code": error}, b"{}"
                    if kind == "/tree/":
                        body = [self._entry(n, p, tree=True) for n, p in repo.files.items()]
                    else:
                        body = {"id": repo_id, "sha": repo.commit,
                                "siblings": [self._entry(n, p, tree=False) for n, p in repo.files.items()]}
                    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        elif "/resolve/" in path:
            repo_id, rest = path.lstrip("/").split("/resolve/", 1)
            revision, _, name = rest.partition("/")
            repo, error = self._find(repo_id, unquote(revision))
            if repo is None or unquote(name) not in repo.files:
                return 404, {"X-Error-Code": error or "EntryNotFound"}, b""
            data = repo.files[unquote(name)].read_bytes()
            headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{git_blob_id(data)}"', "Content-Length": str(len(data))}
            if name.endswith(LFS_SUFFIXES):
                headers |= {"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))}
            return 200, headers, data if method == "GET" else b""
        return 404, {}, b""

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Run the stand-in on a free port of 127.0.0.1 and yield its URL; stop it on exit."""
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                hub.requests.append((method, self.path))
                status, headers, body = hub._answer(method, self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if method == "GET":
                    self.wfile.write(body)

            def do_HEAD(self) -> None:
                self._reply("HEAD")

            def do_GET(self) -> None:
                self._reply("GET")

            def log_message(self, *args) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
