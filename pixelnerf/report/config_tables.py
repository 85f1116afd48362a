"""config/README.md's key tables, generated from the section dataclasses.

Each config section is a frozen dataclass whose fields carry every key's default and
description (:func:`pixelnerf.config.setting`); :data:`SECTIONS` names them. The README
holds each section's table between the markers ``<!-- config-docs:begin NAME -->`` and
``<!-- config-docs:end NAME -->``, which :func:`render_readme` rewrites
(``pixelnerf config-docs``), so the tables cannot drift from the code. :func:`schema_mismatches`
compares the same dataclasses with the JSON schemas: the same keys, and any schema
``default:`` equal to the field's.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pixelnerf.config import REQUIRED, config_fields, field_default, plain, setting_doc
from pixelnerf.config.global_settings import GlobalConfig
from pixelnerf.data.config import DatasetConfig
from pixelnerf.eval.config import EvalConfig
from pixelnerf.model.config import ModelConfig
from pixelnerf.real.settings import RealSettings
from pixelnerf.render.config import RendererConfig
from pixelnerf.train.config import TrainConfig
from pixelnerf.video.settings import VideoSettings

# Section name -> its dataclass; "global" is config/config.yaml, the others the experiment
# file's sections of that name (a section's sub-sections, such as model.encoder, are fields
# holding their own dataclasses, documented in its table).
SECTIONS: dict[str, type] = {
    "global": GlobalConfig,
    "dataset": DatasetConfig,
    "model": ModelConfig,
    "renderer": RendererConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "video": VideoSettings,
    "real": RealSettings,
}
GLOBAL = "global"


def _nested(cls: type, field: dataclasses.Field) -> type | None:
    """The dataclass a field holds (also ``X | None``), else None."""
    hint = typing.get_type_hints(cls)[field.name]
    kinds = typing.get_args(hint) or (hint,)
    return next((k for k in kinds if dataclasses.is_dataclass(k)), None)


def rows(cls: type, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(key path, default, description) of every key of section ``cls``; a sub-section's
    row comes before the rows of its keys."""
    for field in config_fields(cls):
        key = prefix + field.name
        inner = _nested(cls, field)
        default = field_default(field)
        if inner is not None:
            yield key, "" if default is not None else "absent", setting_doc(field)
            yield from rows(inner, key + ".")
        else:
            yield key, format_default(default), setting_doc(field)


def format_default(value: Any) -> str:
    """A default as the README shows it: YAML spelling, ``required`` for a key with none."""
    if value is REQUIRED:
        return "required"
    value = plain(value)
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    return f"`{value}`"


def table(cls: type) -> str:
    """The Markdown table of section ``cls``."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for key, default, doc in rows(cls):
        lines.append(f"| `{key}` | {default} | {doc.replace('|', chr(92) + '|')} |")
    return "\n".join(lines) + "\n"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- config-docs:begin {name} -->", f"<!-- config-docs:end {name} -->"


def render_readme(text: str, sections: Mapping[str, type] = SECTIONS) -> str:
    """``text`` with each section's table rewritten between its markers; a section whose
    markers are missing is an error (its table would silently not be documented)."""
    from pixelnerf.errors import PipelineError

    for name, cls in sections.items():
        begin, end = _markers(name)
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
        if not pattern.search(text):
            raise PipelineError(f"config README has no markers {begin} ... {end}")
        text = pattern.sub(lambda _m, b=begin, e=end, c=cls: f"{b}\n{table(c)}{e}", text)
    return text


def _resolved(node: Mapping[str, Any], definitions: Mapping[str, Any]) -> Mapping[str, Any]:
    """A schema node, or the definition its ``$ref: "#/definitions/NAME"`` names."""
    ref = node.get("$ref")
    prefix = "#/definitions/"
    if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix):] in definitions:
        return definitions[ref[len(prefix):]]
    return node


def schema_mismatches(cls: type, node: Mapping[str, Any], path: str,
                      definitions: Mapping[str, Any] | None = None) -> list[str]:
    """How the schema object ``node`` disagrees with section ``cls``: a key only one of them
    has, or a schema ``default:`` other than the field's (a sub-section's ``{}`` stands for
    its keys' defaults). ``definitions``: the schema's, for sub-sections given by ``$ref``."""
    definitions = definitions or {}
    problems = []
    fields = {f.name: f for f in config_fields(cls)}
    properties = node.get("properties", {})
    for name in sorted(set(fields) ^ set(properties)):
        where = "the dataclass" if name in fields else "the schema"
        problems.append(f"{path}.{name}: only in {where}")
    for name in sorted(set(fields) & set(properties)):
        field, prop = fields[name], _resolved(properties[name], definitions)
        inner = _nested(cls, field)
        if inner is not None and "properties" in prop:
            problems += schema_mismatches(inner, prop, f"{path}.{name}", definitions)
        if "default" in prop:
            expected = {} if inner is not None else plain(field_default(field))
            if prop["default"] != expected:
                problems.append(f"{path}.{name}: schema default {prop['default']!r}, "
                                f"dataclass {expected!r}")
    return problems
