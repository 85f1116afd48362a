"""Keeping the device busy while the host decodes, copies and writes.

The render loop of a shard runs three stages at once: the next object's images are decoded
on a thread (:func:`prefetched`) while the current one renders; its passes come back to the
host without the loop waiting for them (:class:`HostPasses`), and a writer thread
(:class:`OrderedWriter`) turns them into PNGs and done.json while the device renders the
next object. Writes stay in object order, and an object's done.json is still its last file.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import TypeVar

import torch

from pixelnerf.eval.inference import ViewPasses

Key = TypeVar("Key")
Value = TypeVar("Value")
_END = object()  # the end of an iterator, for next()


def prefetched(keys: Iterable[Key], load: Callable[[Key], Value], ahead: int = 1
               ) -> Iterator[tuple[Key, Value]]:
    """``(key, load(key))`` in the order of ``keys``, loading up to ``ahead`` keys in advance
    on one background thread. An exception of ``load`` is raised where its key is reached."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        keys = iter(keys)
        pending: deque[tuple[Key, Future]] = deque()
        while len(pending) <= ahead and (key := next(keys, _END)) is not _END:
            pending.append((key, pool.submit(load, key)))
        while pending:
            key, future = pending.popleft()
            if (following := next(keys, _END)) is not _END:
                pending.append((following, pool.submit(load, following)))
            yield key, future.result()


@dataclass(frozen=True)
class HostPasses:
    """An object's passes on their way to the host.

    From a CUDA device the copies run asynchronously into page-locked memory and an event
    marks their end, so starting them does not wait for the device; :meth:`wait` does. From
    the CPU they are the passes themselves.
    """

    passes: ViewPasses
    done: torch.cuda.Event | None

    @classmethod
    def start(cls, passes: ViewPasses) -> HostPasses:
        if passes.rgb.device.type != "cuda":
            return cls(passes, done=None)
        copies = {}
        for field in fields(passes):
            tensor = getattr(passes, field.name)
            if tensor is not None:
                host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
                tensor = host.copy_(tensor, non_blocking=True)
            copies[field.name] = tensor
        done = torch.cuda.Event()
        done.record()
        return cls(ViewPasses(**copies), done=done)

    def wait(self) -> ViewPasses:
        """The passes on the host, once they are there."""
        if self.done is not None:
            self.done.synchronize()
        return self.passes


class OrderedWriter:
    """Runs write jobs on one background thread, in submission order.

    At most ``max_pending`` jobs wait at a time (a later :meth:`submit` waits for the oldest),
    which bounds the host memory that rendered objects hold. The first failure of a job is
    raised in the caller's thread at a later :meth:`submit` or at :meth:`close`. Leaving the
    ``with`` block waits for the jobs already submitted, also when the caller fails, so
    every object rendered before a failure is still written.
    """

    def __init__(self, max_pending: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer")
        self._pending: deque[Future] = deque()
        self._max_pending = max_pending

    def submit(self, job: Callable[[], None]) -> None:
        while self._pending and (self._pending[0].done()
                                 or len(self._pending) >= self._max_pending):
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(job))

    def close(self) -> None:
        """Wait for every submitted job; raise the first failure."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> OrderedWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:  # already failing: finish what was submitted, keep the caller's error
            self._pool.shutdown(wait=True)
