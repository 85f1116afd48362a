"""Fetch one URL into a ``.part`` file over HTTP(S), resuming with a Range request.

download_file -> _attempt (one request; restarts from byte 0 when the server ignores Range)

The ``.part`` file always holds a prefix of the remote file, so a later run resumes from
its size. It gets its final name only from the caller, after the size and checksum are
verified, so nothing under a final name is ever half-written.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from tqdm import tqdm

from pixelnerf.download import diskio
from pixelnerf.errors import PipelineError

Resolver = Callable[[requests.Session], str]
"""Gives the URL to fetch; called before every attempt (Drive's confirmed URLs expire)."""

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED_RANGE = re.compile(r"^bytes \*/(\d+)$")


@dataclass(frozen=True)
class Fetched:
    """A finished transfer: the bytes in the ``.part`` file and their SHA-256."""

    size: int
    sha256: str


@dataclass(frozen=True)
class _Target:
    """What one download keeps across its attempts: the ``.part`` file, the name its
    messages use, the size it should reach (None: unknown) and how it reads and reports."""

    part: Path
    label: str
    expected_size: int | None
    chunk_bytes: int
    timeout_s: float
    show_progress: bool


class _DroppedError(Exception):
    """The connection ended before the announced end of the body."""

    def __init__(self, have: int, total: int | None) -> None:
        super().__init__(f"{have} of {total if total is not None else '?'} bytes")
        self.have = have
        self.total = total


def new_session() -> requests.Session:
    """A session that asks for the bytes as stored, so offsets match the file on disk."""
    session = requests.Session()
    session.headers["Accept-Encoding"] = "identity"
    return session


def connection_error(exc: requests.RequestException, host: str, label: str) -> PipelineError:
    """One line for a request that never got an answer (no network, refused, timeout)."""
    if isinstance(exc, requests.Timeout):
        return PipelineError(f"no answer from {host} while downloading {label} (timed out)")
    reason = _root_cause(exc)
    return PipelineError(f"cannot connect to {host} to download {label}: {reason}")


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a chained network error, e.g. 'Connection refused'."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def _hash_prefix(part: Path, offset: int, chunk_bytes: int) -> hashlib._Hash:
    digest = hashlib.sha256()
    with open(part, "rb") as handle:
        remaining = offset
        while remaining:
            block = handle.read(min(chunk_bytes, remaining))
            if not block:
                break
            digest.update(block)
            remaining -= len(block)
    return digest


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def _attempt(session: requests.Session, resolve: Resolver, target: _Target) -> Fetched:
    part, label, expected_size = target.part, target.label, target.expected_size
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()
        offset = 0
    # A restart sets offset to 0, so the loop comes round at most once more.
    while True:
        url = resolve(session)
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            response = session.get(url, headers=headers, stream=True, timeout=target.timeout_s)
        except requests.RequestException as exc:
            raise connection_error(exc, urlsplit(url).netloc, label) from exc
        with response:
            if offset and response.status_code == 416:
                match = _UNSATISFIED_RANGE.match(response.headers.get("Content-Range", ""))
                if match and int(match.group(1)) == offset:
                    # The previous run received every byte but stopped before renaming.
                    prefix = _hash_prefix(part, offset, target.chunk_bytes)
                    return Fetched(offset, prefix.hexdigest())
                part.unlink()
                offset = 0
                continue
            if response.status_code >= 400:
                reason = response.reason or "error"
                raise PipelineError(
                    f"HTTP {response.status_code} {reason} while downloading {label} from {url}"
                )
            if offset:
                match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
                if response.status_code != 206 or not match or int(match.group(1)) != offset:
                    # The server sent something other than the missing tail: start over.
                    print(f"{label}: the server did not resume; starting again", file=sys.stderr)
                    if response.status_code == 206:
                        part.unlink()
                        offset = 0
                        continue
                    offset = 0
            return _receive(response, target, offset)


def _receive(response: requests.Response, target: _Target, offset: int) -> Fetched:
    part, label, chunk_bytes = target.part, target.label, target.chunk_bytes
    length = _content_length(response)
    total = offset + length if length is not None else target.expected_size
    digest = _hash_prefix(part, offset, chunk_bytes) if offset else hashlib.sha256()
    received = 0
    try:
        with (
            open(part, "ab" if offset else "wb") as handle,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                disable=not target.show_progress,
                file=sys.stderr,
            ) as bar,
        ):
            try:
                for chunk in response.iter_content(chunk_size=chunk_bytes):
                    diskio.write_chunk(handle, chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except requests.RequestException as exc:
                raise _DroppedError(offset + received, total) from exc
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise diskio.disk_error(exc, part, f"downloading {label} into") from exc
    if length is not None and received < length:
        raise _DroppedError(offset + received, total)
    return Fetched(offset + received, digest.hexdigest())


def download_file(
    resolve: Resolver,
    part: Path,
    *,
    label: str,
    expected_size: int | None,
    chunk_bytes: int,
    timeout_s: float,
    retries: int,
    show_progress: bool = True,
    session: requests.Session | None = None,
) -> Fetched:
    """Bring the whole remote file into ``part``, resuming from what ``part`` already holds.

    A dropped connection is retried ``retries`` times from where it stopped; after that it
    is one error line and ``part`` is kept for the next run. HTTP errors and unreachable
    hosts are one error line at once. Returns the size and SHA-256 of ``part``.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    own_session = session is None
    session = session or new_session()
    target = _Target(part, label, expected_size, chunk_bytes, timeout_s, show_progress)
    try:
        attempt = 0
        while True:
            try:
                return _attempt(session, resolve, target)
            except _DroppedError as exc:
                if attempt >= retries:
                    raise PipelineError(
                        f"connection dropped while downloading {label} after {exc}; "
                        f"run again to resume from {part}"
                    ) from exc
                attempt += 1
                print(f"{label}: connection dropped after {exc}; resuming", file=sys.stderr)
    finally:
        if own_session:
            session.close()
