"""A small HTTP server on 127.0.0.1 for download tests: Range, faults, and a fake Drive.

It serves byte strings the test puts in ``files`` (by URL path) and, for Google Drive,
``drive_files`` (by id) behind the three pages gdown and the downloader use:
``/embeddedfolderview?id=F`` (a folder listing), ``/uc?id=X`` (the file, or for "large"
files a confirmation form) and ``/download?id=X&confirm=t`` (the bytes). Faults are queued
per resource and used up one per request. ``reroute_requests`` sends every request that
`requests` makes to a Drive host to this server and fails any other non-local request, so
a test can never reach the real addresses.
"""

from __future__ import annotations

import html
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
import requests

DRIVE_HOSTS = ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")


@dataclass
class Fault:
    """What to do instead of a normal answer: ``status`` (an HTTP error) or ``drop``
    (announce the full length, send ``after`` bytes, then close the connection)."""

    kind: str
    status: int = 500
    after: int = 0


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    drive_files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    drive_folders: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    drive_confirm: bool = True
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    ignore_range: bool = False
    log: list[tuple[str, str | None]] = field(default_factory=list)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self, key: str) -> Fault | None:
        with self.lock:
            queue = self.faults.get(key) or []
            return queue.pop(0) if queue else None


def _handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return  # keep test output quiet

        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            with state.lock:
                state.log.append((self.path, self.headers.get("Range")))
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/embeddedfolderview":
                return self._folder(query.get("id", ""))
            if url.path in ("/uc", "/download") and query.get("id") in state.drive_files:
                file_id = query["id"]
                name, data = state.drive_files[file_id]
                if url.path == "/uc" and state.drive_confirm:
                    return self._confirmation_page(file_id)
                return self._bytes(file_id, data, attachment=name)
            if url.path in state.files:
                return self._bytes(url.path, state.files[url.path], attachment=None)
            self.send_error(404, "Not Found")

        def _html(self, text: str) -> None:
            body = text.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _folder(self, folder_id: str) -> None:
            if folder_id not in state.drive_folders:
                self.send_error(404, "Not Found")
                return
            title, ids = state.drive_folders[folder_id]
            links = "".join(
                f'<a href="https://drive.google.com/file/d/{fid}/view?usp=drive_web">'
                f"{html.escape(state.drive_files[fid][0])}</a>\n"
                for fid in ids
            )
            self._html(
                f"<html><head><title>{html.escape(title)}</title></head>"
                f"<body>\n{links}</body></html>"
            )

        def _confirmation_page(self, file_id: str) -> None:
            # Drive's "can't scan this file for viruses" page: a form on one line.
            form = (
                f'<form id="download-form" action="{state.base_url}/download" method="get">'
                f'<input type="hidden" name="id" value="{file_id}">'
                '<input type="hidden" name="confirm" value="t"></form>'
            )
            self._html(f"<html><body>\n<p>Too large to scan</p>\n{form}\n</body></html>")

        def _bytes(self, key: str, data: bytes, attachment: str | None) -> None:
            fault = state.next_fault(key)
            if fault is not None and fault.kind == "status":
                self.send_error(fault.status)
                return
            start = 0
            ranged = self.headers.get("Range")
            if ranged and not state.ignore_range:
                start = int(ranged.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            if attachment is not None:
                self.send_header("Content-Disposition", f'attachment; filename="{attachment}"')
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            body = data[start:]
            if fault is not None and fault.kind == "drop":
                self.wfile.write(body[: fault.after])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def serve() -> Iterator[ServerState]:
    """Run the server in a thread for the duration of the block."""
    state = ServerState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll interval keeps shutdown (once per test) quick.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def reroute_requests(monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    """Send `requests` calls for Drive hosts to ``base_url``; refuse any other host."""
    original = requests.Session.request
    local = urlsplit(base_url)

    def request(self: requests.Session, method: str, url: str, *args: object, **kwargs: object):
        parts = urlsplit(url)
        if parts.hostname in DRIVE_HOSTS:
            url = urlunsplit((local.scheme, local.netloc, parts.path, parts.query, ""))
        elif parts.hostname != "127.0.0.1":
            raise AssertionError(f"a test tried to reach {url}")
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)


def closed_port() -> int:
    """A local port where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
