"""Training checkpoints: save atomically, keep a backup, resume to the step.

Files in the checkpoint directory:

- ``pixel_nerf_latest``: the model as a plain state dict with the published keys (so it
  loads in the published code, and theirs in ours); ``pixel_nerf_backup`` the previous one.
- ``train_state.pt``: the step count, optimizer state, RNG states, training seconds and
  the SHA-256 of the ``pixel_nerf_latest`` bytes it belongs to; ``train_state_backup.pt``
  pairs with ``pixel_nerf_backup`` alike.

A save first copies the latest pair to the backup pair (only if the latest pair is known
to be good), then writes the model, then the state, each through a temporary file and a
rename. A resume takes the latest pair when both files read and their hashes agree, else
the backup pair with one warning line; when neither pair is usable it stops with one error
line and deletes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_open, atomic_torch_save, atomic_write_bytes
from pixelnerf.train.divergence import check_weights

LATEST = "pixel_nerf_latest"
BACKUP = "pixel_nerf_backup"
STATE = "train_state.pt"
STATE_BACKUP = "train_state_backup.pt"
STATE_FORMAT = 1  # version of the train_state layout


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"pixelnerf: warning: {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass
class Resumed:
    """What a resume restored: the next step to run and the training seconds so far."""

    step: int
    seconds: float
    source: Path


def capture_rng_state() -> dict[str, Any]:
    """Global torch, CUDA, NumPy and Python RNG states, as tensors and plain values only
    (so the file loads with ``weights_only=True``)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, words, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": int(version), "words": torch.tensor(words, dtype=torch.int64),
                   "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state(
        ("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
         npy["gauss"])
    )
    py = state["python"]
    random.setstate((py["version"], tuple(int(w) for w in py["words"].tolist()), py["gauss"]))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def model_bytes(model: torch.nn.Module) -> bytes:
    """The model's state dict (CPU tensors) serialised by ``torch.save``."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def atomic_copy(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temporary file and a rename."""
    with open(source, "rb") as src, atomic_open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)


class Checkpointer:
    """Saves and restores one run's checkpoint directory.

    ``latest_good`` tells whether ``pixel_nerf_latest`` is known good (written by this run or
    resumed from); only then is it copied over the backup, so a corrupt latest never
    replaces a good backup.
    """

    def __init__(self, directory: str | Path, warn_fn: Callable[[str], None] = warn):
        self.directory = Path(directory)
        self.warn = warn_fn
        self.latest_good = False

    def path(self, name: str) -> Path:
        return self.directory / name

    def exists(self) -> bool:
        """Whether any checkpoint file is present."""
        return any(self.path(n).exists() for n in (LATEST, BACKUP, STATE, STATE_BACKUP))

    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
             seconds: float) -> None:
        """Write the model and train state after ``step`` completed steps; a model with a
        non-finite value is refused (one error line) and the files on disk stay as they are."""
        check_weights(step, model)
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.latest_good:
            atomic_copy(self.path(LATEST), self.path(BACKUP))
            atomic_copy(self.path(STATE), self.path(STATE_BACKUP))
        data = model_bytes(model)
        atomic_write_bytes(self.path(LATEST), data)
        try:
            atomic_torch_save(
                {
                    "format": STATE_FORMAT,
                    "step": int(step),
                    "seconds": float(seconds),
                    "optimizer": optimizer.state_dict(),
                    "rng": capture_rng_state(),
                    "model_sha256": hashlib.sha256(data).hexdigest(),
                },
                self.path(STATE),
            )
        except BaseException:
            # A first model without any state is no checkpoint: left alone it would make the
            # rerun stop at "both pairs unusable" instead of starting afresh. Otherwise the
            # old state's hash no longer matches and a resume takes the backup pair.
            if not any(self.path(n).exists() for n in (STATE, BACKUP, STATE_BACKUP)):
                self.path(LATEST).unlink(missing_ok=True)
            raise
        self.latest_good = True

    def resume(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Resumed | None:
        """Restore model, optimizer and RNG states; ``None`` when there is no checkpoint.

        Raises :class:`PipelineError` (one line) when checkpoint files exist but neither
        pair is usable; no file is changed or deleted then.
        """
        if not self.exists():
            return None
        try:
            resumed = self._load_pair(LATEST, STATE, model, optimizer)
            self.latest_good = True
            return resumed
        except Exception as exc:  # any failure to read or match means "not usable"
            latest_error = _reason(exc)
        try:
            resumed = self._load_pair(BACKUP, STATE_BACKUP, model, optimizer)
        except Exception as exc:
            raise PipelineError(
                f"cannot resume from {self.directory}: {LATEST} ({latest_error}) and "
                f"{BACKUP} ({_reason(exc)}) are both unusable; nothing was deleted, remove "
                f"the directory to start over"
            ) from exc
        self.warn(
            f"{self.path(LATEST)} is unusable ({latest_error}); resuming from "
            f"{self.path(BACKUP)} at step {resumed.step}"
        )
        return resumed

    def _load_pair(self, model_name: str, state_name: str, model: torch.nn.Module,
                   optimizer: torch.optim.Optimizer) -> Resumed:
        model_path, state_path = self.path(model_name), self.path(state_name)
        if not model_path.exists():
            raise FileNotFoundError("missing")
        if not state_path.exists():
            raise FileNotFoundError(f"{state_name} missing")
        data = model_path.read_bytes()
        state_dict = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"{state_name} is not a train state of format {STATE_FORMAT}")
        if state["model_sha256"] != hashlib.sha256(data).hexdigest():
            raise ValueError(f"does not match {state_name}")
        model.load_state_dict(state_dict, strict=True)
        optimizer.load_state_dict(state["optimizer"])
        restore_rng_state(state["rng"])
        return Resumed(step=int(state["step"]), seconds=float(state["seconds"]), source=model_path)


def _reason(exc: BaseException) -> str:
    """A short one-line reason for a failed load."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
