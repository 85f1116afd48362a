"""Atomic file output: write to a temporary file beside the target, then rename.

A killed job therefore never leaves a half-written file under the final name, and a full
disk is one error line naming the file (its temporary file removed, the target untouched).

Test hook: the environment variable ``PIXELNERF_FAULT_ENOSPC`` holds a glob; every atomic
write whose target name (or full path) matches it fails with ENOSPC after its bytes were
written to the temporary file, as a disk that fills up mid-write would. Unset, it costs one
dictionary look-up per file.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pixelnerf.errors import PipelineError

FAULT_ENOSPC_ENV = "PIXELNERF_FAULT_ENOSPC"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _current_umask() -> int:
    """The process umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _injected_disk_full(target: Path) -> None:
    """Raise ENOSPC when the test hook's glob matches ``target`` (see the module doc)."""
    pattern = os.environ.get(FAULT_ENOSPC_ENV)
    if pattern and (fnmatch.fnmatch(target.name, pattern) or fnmatch.fnmatch(str(target), pattern)):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success fsync and rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was; a full
    disk (ENOSPC, EDQUOT) then raises one :class:`PipelineError` line naming ``path``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            _injected_disk_full(target)
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_current_umask())  # mkstemp makes it private (0600)
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            raise PipelineError(f"disk full while writing {target} ({exc.strerror}); it was "
                                f"left as it was: free some space and run again") from exc
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically."""
    import torch

    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)


def atomic_save_png(path: str | os.PathLike, image: Any) -> None:
    """Save a uint8 image array ``(H, W)`` or ``(H, W, C)`` as PNG atomically."""
    import imageio.v3 as iio

    with atomic_open(path, "wb") as handle:
        handle.write(iio.imwrite("<bytes>", image, extension=".png"))
