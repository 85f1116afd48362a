"""Decoded objects for each training step, decoded once per object and batch.

``step_batches -> object_batch`` (sampling). With ``num_workers > 0`` a DataLoader decodes
objects in worker processes (pinned memory on CUDA) ahead of the GPU; with 0 workers the
main process decodes and keeps decoded objects in memory up to a byte budget, which is
what small datasets (the demo) want: every object is read from disk once per run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pixelnerf.data.common import ObjectDataset
from pixelnerf.train.sampling import object_batch

BYTES_PER_MB = 1 << 20


class StepObjectSampler(Sampler[list[int]]):
    """Object indices of steps ``start .. end-1``, each ``object_batch(n, B, seed, step)``."""

    def __init__(self, n_objects: int, batch_objects: int, seed: int, start: int, end: int):
        self.n_objects, self.batch_objects, self.seed = n_objects, batch_objects, seed
        self.start, self.end = start, end

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.end):
            yield object_batch(self.n_objects, self.batch_objects, self.seed, step)

    def __len__(self) -> int:
        return max(0, self.end - self.start)


def reseed_worker_views(worker: int) -> None:
    """DataLoader worker start: a reader that draws views at random (``max_views``) gets a
    generator of its own per worker; each worker holds a copy of the reader, whose copied
    generators would otherwise draw the same view subsets in every worker."""
    import numpy as np
    from torch.utils.data import get_worker_info

    dataset = get_worker_info().dataset
    if getattr(dataset, "rng", None) is not None:
        dataset.rng = np.random.default_rng([int(dataset.rng.integers(1 << 62)), worker])


def keep_list(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DataLoader collate: objects may differ in view count, so they are not stacked."""
    return items


class MemoryCache:
    """Dataset items kept after their first decoding while under ``limit_bytes``.

    A reader with ``decode``/``build`` (every :class:`ObjectDataset`) is cached decoded,
    all views, and each access builds a new item from it: a reader that draws a subset of
    the views (``max_views``) then draws a new one at every access, as uncached. Other
    datasets are cached item by item.
    """

    def __init__(self, dataset: Dataset, limit_bytes: int):
        self.dataset, self.limit_bytes = dataset, limit_bytes
        self.decoded = isinstance(dataset, ObjectDataset)
        self.items: dict[int, Any] = {}
        self.used_bytes = 0

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index in self.items:
            kept = self.items[index]
            return self.dataset.build(kept) if self.decoded else kept
        kept = self.dataset.decode(index) if self.decoded else self.dataset[index]
        size = kept.nbytes() if self.decoded else item_bytes(kept)
        if self.used_bytes + size <= self.limit_bytes:
            self.items[index] = kept
            self.used_bytes += size
        return self.dataset.build(kept) if self.decoded else kept


def item_bytes(item: Mapping[str, Any]) -> int:
    """Bytes held by the tensors of one dataset item."""
    return sum(v.numel() * v.element_size() for v in item.values() if isinstance(v, torch.Tensor))


def to_device(item: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """A copy of ``item`` with every tensor on ``device`` (asynchronous from pinned memory)."""
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in item.items()
    }


def step_batches(
    dataset: Dataset,
    batch_objects: int,
    seed: int,
    start: int,
    end: int,
    device: torch.device,
    num_workers: int = 0,
    cache_mb: int = 0,
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(step, objects on device)`` for steps ``start .. end-1``.

    The objects of a step depend only on ``(seed, step)``, so a resumed run sees the same
    objects as an unbroken one.
    """
    sampler = StepObjectSampler(len(dataset), batch_objects, seed, start, end)
    if num_workers > 0:
        loader: Any = DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=keep_list,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
            worker_init_fn=reseed_worker_views,
        )
    else:
        cache = MemoryCache(dataset, cache_mb * BYTES_PER_MB)
        loader = ([cache[i] for i in indices] for indices in sampler)
    for step, items in zip(range(start, end), loader, strict=False):
        yield step, [to_device(item, device) for item in items]


def first_objects(dataset: Dataset, count: int, device: torch.device) -> list[dict[str, Any]]:
    """The first ``count`` objects of ``dataset`` (held-out objects for validation)."""
    return [to_device(dataset[i], device) for i in range(min(count, len(dataset)))]


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for begin in range(0, len(items), size):
        yield items[begin : begin + size]
