"""The one place downloads and extraction write bytes, and how a failed write is reported.

Everything goes through :func:`write_chunk` so that a full disk can be simulated in tests
(by replacing it) and is reported the same way wherever it happens.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from pixelnerf.errors import PipelineError


def write_chunk(handle: BinaryIO, chunk: bytes) -> None:
    """Write all of ``chunk`` to ``handle``."""
    handle.write(chunk)


def disk_error(exc: OSError, path: str | os.PathLike, action: str) -> PipelineError:
    """One error line for a failed write: a full disk says so plainly."""
    if exc.errno == errno.ENOSPC:
        return PipelineError(f"disk full while {action} {path}; free some space and run again")
    if exc.errno == errno.EDQUOT:
        return PipelineError(f"disk quota exceeded while {action} {path}; free some space")
    return PipelineError(f"cannot write {path} while {action}: {exc.strerror or exc}")


def sha256_of(path: Path, chunk_bytes: int) -> str:
    """SHA-256 hex digest of a file, read in ``chunk_bytes`` pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()
