"""Run the published pixelNeRF trainer (or any script) with fallbacks for what today's
packages lack, without editing it:

    python benchmarks/published_run.py [--fallback-site DIR] SCRIPT [ARG ...]

``main -> install_fallbacks -> runpy.run_path(SCRIPT)``. Everything here is a last resort,
consulted only when the interpreter's own packages do not have a module:

- ``--fallback-site DIR`` (wheels unpacked by ``pip install --target``) is appended to
  ``sys.path``, after site-packages, so installed packages win;
- ``torchvision.transforms.functional_tensor`` (removed in torchvision 0.17) resolves to its
  successor ``torchvision.transforms._functional_tensor``;
- ``cv2``: a stand-in with the two names the published code touches on the ShapeNet path,
  ``COLORMAP_HOT`` and ``applyColorMap`` (its step-0 visualisation, grey instead of the
  'hot' colours; the image is never read), and ``decomposeProjectionMatrix`` (its DTU
  reader only), which raises. The OpenCV wheel (about 50 MB) does not fit what a device
  call carries.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import runpy
import sys
import types
from collections.abc import Sequence
from pathlib import Path

import numpy as np

RENAMED = {"torchvision.transforms.functional_tensor": "torchvision.transforms._functional_tensor"}
CV2_COLORMAP_HOT = 11  # OpenCV's value of the constant


def apply_color_map(image: np.ndarray, color_map: int = CV2_COLORMAP_HOT) -> np.ndarray:
    """cv2.applyColorMap's shape contract: (H, W) or (H, W, 1) uint8 -> (H, W, 3) uint8, as
    grey levels."""
    grey = np.asarray(image, dtype=np.uint8).reshape(image.shape[:2])
    return np.repeat(grey[..., None], 3, axis=-1)


def decompose_projection_matrix(*args: object, **kwargs: object) -> None:
    raise ImportError("cv2 is not installed: published_run.py's stand-in has no "
                      "decomposeProjectionMatrix (the published DTU reader needs OpenCV)")


def cv2_stand_in(module: types.ModuleType) -> None:
    module.COLORMAP_HOT = CV2_COLORMAP_HOT
    module.applyColorMap = apply_color_map
    module.decomposeProjectionMatrix = decompose_projection_matrix


class _Fallback(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The last finder on ``sys.meta_path``: asked only for modules no other finder has."""

    def find_spec(self, name: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        if name in RENAMED or name == "cv2":
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        if module.__name__ == "cv2":
            cv2_stand_in(module)
            return
        successor = importlib.import_module(RENAMED[module.__name__])
        module.__dict__.update({key: value for key, value in vars(successor).items()
                                if not key.startswith("__")})


def install_fallbacks(fallback_site: Path | None) -> None:
    if fallback_site is not None:
        sys.path.append(str(fallback_site))
    sys.meta_path.append(_Fallback())


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    site = None
    if args[:1] == ["--fallback-site"]:
        site, args = Path(args[1]), args[2:]
    if not args:
        sys.exit("usage: published_run.py [--fallback-site DIR] SCRIPT [ARG ...]")
    install_fallbacks(site)
    sys.argv = args
    # As `python SCRIPT` would: the script's folder first (the published train.py imports
    # its trainlib from there).
    sys.path[0] = str(Path(args[0]).resolve().parent)
    runpy.run_path(args[0], run_name="__main__")


if __name__ == "__main__":
    main()
