"""Reading the YAML configs: the global `config/config.yaml` and one file per experiment.

Every subcommand takes `--config config/experiments/<name>.yaml`; this module turns that
file into a validated mapping, so a misspelt key or a wrong type stops before any work with
one line naming the key.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pixelnerf.errors import PipelineError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT_SCHEMA = PROJECT_ROOT / "workflow" / "schemas" / "experiment.schema.yaml"


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping; a missing, unreadable or non-mapping file is one error line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PipelineError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise PipelineError(f"config file {path}{where} is not valid YAML") from exc
    if not isinstance(data, dict):
        raise PipelineError(
            f"config file {path} must hold a mapping of keys, not {type(data).__name__}"
        )
    return data


def validate(data: Mapping[str, Any], schema_path: str | os.PathLike, origin: str) -> None:
    """Validate ``data`` against a JSON schema (YAML file); the first error names its key path."""
    import jsonschema

    schema = load_yaml(schema_path)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(dict(data)), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        key = ".".join(str(part) for part in first.absolute_path) or "(top level)"
        raise PipelineError(f"{origin}: key {key}: {first.message}")


def load_experiment(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate one experiment config (`config/experiments/<name>.yaml`)."""
    data = load_yaml(path)
    if EXPERIMENT_SCHEMA.exists():
        validate(data, EXPERIMENT_SCHEMA, str(path))
    return data


def check_known_keys(
    mapping: Mapping[str, Any], known: Iterable[str], origin: str, ignored: Iterable[str] = ()
) -> None:
    """One error line naming the first key of ``mapping`` that is neither known nor ignored."""
    known = set(known)
    unknown = sorted(set(mapping) - known - set(ignored))
    if unknown:
        raise PipelineError(
            f"{origin}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )


def section(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One section of an experiment config; a missing section is one error line."""
    value = config.get(name)
    if not isinstance(value, Mapping):
        raise PipelineError(f"experiment config has no '{name}' section")
    return dict(value)
