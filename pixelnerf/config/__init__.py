"""Reading the YAML configs: the global `config/config.yaml` and one file per experiment.

Every subcommand takes `--config config/experiments/<name>.yaml`; this module turns that
file into a validated mapping, so a misspelt key or a wrong type stops before any work with
one line naming the key. The JSON schemas ship inside the package
(``pixelnerf/schemas/*.schema.yaml``) and are the one check of keys, types and ranges, for
the command line and the Snakefile alike. Each section is a frozen dataclass whose fields
(:func:`setting`) hold every key's default and description once; :func:`build` makes it from
the validated mapping and is the only reader of a section's raw keys
(:mod:`pixelnerf.report.config_tables` lists the sections and writes config/README.md from
them).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pixelnerf.errors import PipelineError

REQUIRED = dataclasses.MISSING  # setting(REQUIRED, ...): a key every config must give


def setting(default: Any, doc: str) -> Any:
    """A config dataclass field: its default and its one-line description (``metadata["doc"]``).

    Every config key's default and meaning are written once, here in the field, so that the
    schema and config/README.md can be generated from (or checked against) the dataclasses.
    A mutable default (list, dict) is copied for each instance.
    """
    metadata = {"doc": doc}
    if default is REQUIRED:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def setting_doc(field: dataclasses.Field) -> str:
    """The one-line description a field was declared with (:func:`setting`)."""
    return str(field.metadata["doc"])


def config_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of a section dataclass that are config keys: those declared with
    :func:`setting`; any other field is derived by the code and keeps its default."""
    return [field for field in dataclasses.fields(cls) if "doc" in field.metadata]


def field_default(field: dataclasses.Field) -> Any:
    """A field's default (:data:`REQUIRED` where the config must give it)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


T = TypeVar("T")


def build(cls: type[T], data: Mapping[str, Any] | None, origin: str) -> T:
    """The section dataclass ``cls`` from a schema-checked mapping (None: every default).

    Each key becomes its field's type: lists become tuples, integers in float fields
    floats, a mapping under a dataclass field that dataclass (built the same way); an absent
    key takes the field's default. The schema has already checked keys, types and ranges;
    what it cannot say (one field against another) is the section's ``check(origin)``
    method, called last. ``origin`` is the section's key path, for the error lines.
    """
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise PipelineError(f"{origin} must be a mapping of keys, not {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in config_fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise PipelineError(f"{origin}: unknown key {unknown[0]}")
    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _as_type(hints[name], data[name], f"{origin}.{name}")
        elif field_default(field) is REQUIRED:
            raise PipelineError(f"{origin}: key {name} is missing")
    config = cls(**values)
    check = getattr(config, "check", None)
    if callable(check):
        check(origin)
    return config


def _as_type(hint: Any, value: Any, origin: str) -> Any:
    """A YAML value as a field of type ``hint`` holds it (see :func:`build`)."""
    if value is None:
        return None
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [arg for arg in args if arg is not type(None)]
        for kind in kinds:  # the first kind the value fits, dataclasses and tuples first
            if dataclasses.is_dataclass(kind) and isinstance(value, Mapping):
                return build(kind, value, origin)
            if typing.get_origin(kind) is tuple and isinstance(value, (list, tuple)):
                return _as_type(kind, value, origin)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    if dataclasses.is_dataclass(hint):
        return build(hint, value, origin)
    if typing.get_origin(hint) is tuple:
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        return tuple(_as_type(kind, item, origin) for kind, item in zip(items, value, strict=True))
    if typing.get_origin(hint) is Mapping or hint is Mapping:
        return {str(key): _as_type(args[1], item, origin) if args else item
                for key, item in value.items()}
    if hint is float and not isinstance(value, bool):
        return float(value)
    return value


def plain(value: Any) -> Any:
    """A config value as YAML holds it: dataclasses as mappings, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    return value


PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT_SCHEMA = "experiment.schema.yaml"
CONFIG_SCHEMA = "config.schema.yaml"


def load_schema(name: str) -> dict[str, Any]:
    """A packaged schema as a mapping."""
    text = (resources.files("pixelnerf") / "schemas" / name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


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


def validate(data: Mapping[str, Any], schema: str, origin: str) -> None:
    """Validate ``data`` against the packaged schema ``schema`` with the validator of the
    draft the schema declares; the first error names its key path."""
    from jsonschema.validators import validator_for

    document = load_schema(schema)
    validator = validator_for(document)(document)
    errors = sorted(validator.iter_errors(dict(data)), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        key = ".".join(str(part) for part in first.absolute_path) or "(top level)"
        raise PipelineError(f"{origin}: key {key}: {first.message}")


def load_experiment(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate one experiment config (`config/experiments/<name>.yaml`)."""
    data = load_yaml(path)
    validate(data, EXPERIMENT_SCHEMA, str(path))
    return data


def section(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One section of an experiment config; a missing section is one error line."""
    value = config.get(name)
    if not isinstance(value, Mapping):
        raise PipelineError(f"experiment config has no '{name}' section")
    return dict(value)


def optional_section(config: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """An optional section (``video``, ``real``): None where absent, which its dataclass
    reads as every default."""
    return None if config.get(name) is None else section(config, name)
