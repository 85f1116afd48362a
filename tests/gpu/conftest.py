"""The GPU tests: a CUDA device at the published sizes, minutes in all.

Every test here carries the `gpu` marker (given by folder in tests/conftest.py, like the
other kinds). Runs whose `-m` does not name the marker leave them out, so `make test` and
`make test-fast` never run or count them; `make test-gpu` runs them (`pytest -m gpu`) and,
on a machine without CUDA, stops at once with one line saying so (tests/conftest.py, which
also covers the CUDA cases of the parity tests). `make gpu-check` runs them and `pixelnerf
bench`, with `-s`, into a log: the tests print what they measure.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def gpu_environment() -> Iterator[str]:
    """The device and versions, printed once ahead of the measurements; yields the GPU's name."""
    import torch

    props = torch.cuda.get_device_properties(0)
    try:
        import triton

        triton_version = triton.__version__
    except ImportError as exc:
        triton_version = f"missing ({exc})"
    print(f"\nGPU {props.name}: {props.total_memory / 2**30:.0f} GiB, "
          f"{props.multi_processor_count} SMs, capability {props.major}.{props.minor}; "
          f"{torch.cuda.device_count()} device(s); python {platform.python_version()}, "
          f"torch {torch.__version__}, CUDA {torch.version.cuda}, triton {triton_version}")
    yield props.name
