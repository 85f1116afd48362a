"""A :class:`~pixelnerf.errors.PipelineError` met while Snakemake reads the Snakefile or
builds its DAG, as one line and exit status 1: before any job, no traceback.

Snakemake wraps an ``Exception`` raised in an input function into an InputFunctionException
with a traceback, but lets ``SystemExit`` through; so the error is printed here and the run
ends with ``SystemExit``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from pixelnerf.errors import PipelineError

PREFIX = "pixelnerf workflow: error:"
R = TypeVar("R")


def stop(message: object) -> NoReturn:
    """End the run with one line."""
    print(f"{PREFIX} {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def one_line(func: Callable[..., R]) -> Callable[..., R]:
    """``func`` whose PipelineError ends the run with one line (its signature kept, since
    Snakemake passes an input function the arguments its signature names)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        try:
            return func(*args, **kwargs)
        except PipelineError as exc:
            stop(exc)

    return wrapper


def by_exp(method: Callable[[str], R]) -> Callable[[Any], R]:
    """An input function of a rule with the wildcard ``exp``: ``method(wildcards.exp)``."""

    def from_wildcards(wildcards: Any) -> R:
        return method(wildcards.exp)

    return one_line(from_wildcards)
