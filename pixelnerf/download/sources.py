"""`config/sources.yaml`: what each download source is, where it lands, and its checksums.

Reading validates every entry up front, so a typo stops with one line naming the key.
``record_checksums`` writes a first download's size and SHA-256 back into the file by
editing only the two value lines of that file's entry, so the comments that document the
layout survive.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from pixelnerf.config import load_yaml
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_text

ROOTS = ("data", "checkpoints")
MERGE_DEST = "."
ARCHIVE_SUFFIX = ".zip"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FILE_KEYS = {"name", "url", "gdrive_id", "gdrive_folder", "content", "into", "size", "sha256"}
_SOURCE_KEYS = {"description", "root", "dest", "files"}
_SETTING_KEYS = {
    "chunk_bytes": int,
    "timeout_s": (int, float),
    "retries": int,
    "keep_archives": bool,
    "content_search_depth": int,
    "gdrive_download_url": str,
    "downloads_dir": str,
}


@dataclass(frozen=True)
class Settings:
    """Transfer tunables (section ``settings`` of sources.yaml)."""

    chunk_bytes: int
    timeout_s: float
    retries: int
    keep_archives: bool
    content_search_depth: int
    gdrive_download_url: str
    downloads_dir: str


@dataclass(frozen=True)
class FileSpec:
    """One file of a source. Exactly one of ``url``, ``gdrive_id``, ``gdrive_folder`` is set.

    A ``.zip`` file is an archive: ``content`` is a glob that its content root holds (e.g.
    ``metadata.yaml``); the folder holding it, however deep the archive wraps it, is what
    gets placed at ``<dest>/<into>``. Any other file is placed as it is, at
    ``<dest>/<into>/<name>``, and has no ``content``.
    """

    name: str
    url: str | None
    gdrive_id: str | None
    gdrive_folder: str | None
    content: str | None
    into: str
    size: int | None
    sha256: str | None

    @property
    def is_archive(self) -> bool:
        """True for a zip archive (extracted), False for a file placed as downloaded."""
        return self.name.endswith(ARCHIVE_SUFFIX)

    @property
    def placed_at(self) -> str:
        """The path under the destination this file becomes ("": the destination itself)."""
        if self.is_archive:
            return self.into
        return str(PurePosixPath(self.into, self.name)) if self.into else self.name


@dataclass(frozen=True)
class SourceSpec:
    """One entry of ``sources``: its files, the root it goes under and its folder there."""

    name: str
    root: str
    dest: str
    files: tuple[FileSpec, ...]

    @property
    def merges(self) -> bool:
        """True when the archive's top-level folders go straight under the root."""
        return self.dest == MERGE_DEST


@dataclass(frozen=True)
class Sources:
    """The whole of sources.yaml, validated."""

    path: Path
    settings: Settings
    sources: Mapping[str, SourceSpec]

    def get(self, name: str) -> SourceSpec:
        if name not in self.sources:
            known = ", ".join(sorted(self.sources))
            raise PipelineError(f"{self.path} has no source {name!r} (known: {known})")
        return self.sources[name]


def _relative_path(value: Any, where: str, allow_dot: bool) -> str:
    """A '/'-separated path inside a root: no absolute part, no '..'."""
    if not isinstance(value, str) or not value:
        raise PipelineError(f"{where} must be a non-empty string")
    if allow_dot and value == MERGE_DEST:
        return value
    parts = PurePosixPath(value).parts
    if value.startswith("/") or "\\" in value or any(p in ("..", ".") for p in parts):
        raise PipelineError(f"{where} must be a relative path without '.' or '..', not {value!r}")
    return str(PurePosixPath(value))


def _parse_settings(raw: Any, origin: str) -> Settings:
    if not isinstance(raw, dict):
        raise PipelineError(f"{origin}: key settings must be a mapping")
    values = {}
    for key, kind in _SETTING_KEYS.items():
        if key not in raw:
            raise PipelineError(f"{origin}: key settings.{key} is missing")
        value = raw[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise PipelineError(f"{origin}: key settings.{key} has the wrong type ({value!r})")
        values[key] = value
    extra = set(raw) - set(_SETTING_KEYS)
    if extra:
        raise PipelineError(f"{origin}: unknown key settings.{sorted(extra)[0]}")
    if values["chunk_bytes"] <= 0 or values["retries"] < 0 or values["timeout_s"] <= 0:
        raise PipelineError(
            f"{origin}: settings.chunk_bytes and timeout_s must be > 0, retries >= 0"
        )
    if "{id}" not in values["gdrive_download_url"]:
        raise PipelineError(f"{origin}: key settings.gdrive_download_url must contain {{id}}")
    return Settings(**values)


def _parse_file(raw: Any, where: str) -> FileSpec:
    if not isinstance(raw, dict):
        raise PipelineError(f"{where} must be a mapping")
    extra = set(raw) - _FILE_KEYS
    if extra:
        raise PipelineError(f"{where}: unknown key {sorted(extra)[0]}")
    name = raw.get("name")
    if not isinstance(name, str) or "/" in name or name in ("", ".", "..") or "\\" in name:
        raise PipelineError(f"{where}.name must be a file name, not {name!r}")
    if name.endswith(ARCHIVE_SUFFIX):
        content = _relative_path(raw.get("content"), f"{where}.content", allow_dot=False)
    elif raw.get("content") is not None:
        raise PipelineError(f"{where}.content is only for {ARCHIVE_SUFFIX} archives")
    else:
        content = None
    origins = [key for key in ("url", "gdrive_id", "gdrive_folder") if raw.get(key) is not None]
    if len(origins) != 1:
        raise PipelineError(f"{where} needs exactly one of url, gdrive_id, gdrive_folder")
    for key in origins:
        if not isinstance(raw[key], str) or not raw[key]:
            raise PipelineError(f"{where}.{key} must be a non-empty string")
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise PipelineError(f"{where}.size must be null or a byte count, not {size!r}")
    sha = raw.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha)):
        raise PipelineError(f"{where}.sha256 must be null or 64 lower-case hex digits")
    into = raw.get("into", "")
    into = "" if into in ("", None) else _relative_path(into, f"{where}.into", allow_dot=False)
    return FileSpec(
        name=name,
        url=raw.get("url"),
        gdrive_id=raw.get("gdrive_id"),
        gdrive_folder=raw.get("gdrive_folder"),
        content=content,
        into=into,
        size=size,
        sha256=sha,
    )


def _parse_source(name: str, raw: Any, origin: str) -> SourceSpec:
    where = f"{origin}: sources.{name}"
    if not isinstance(raw, dict):
        raise PipelineError(f"{where} must be a mapping")
    extra = set(raw) - _SOURCE_KEYS
    if extra:
        raise PipelineError(f"{where}: unknown key {sorted(extra)[0]}")
    root = raw.get("root", "data")
    if root not in ROOTS:
        raise PipelineError(f"{where}.root must be one of {', '.join(ROOTS)}, not {root!r}")
    dest = _relative_path(raw.get("dest"), f"{where}.dest", allow_dot=True)
    files_raw = raw.get("files")
    if not isinstance(files_raw, list) or not files_raw:
        raise PipelineError(f"{where}.files must be a non-empty list")
    files = tuple(_parse_file(item, f"{where}.files[{i}]") for i, item in enumerate(files_raw))
    owned = [spec.placed_at for spec in files]
    # Each file owns one path of the destination; "" (the whole of it) only when alone.
    for i, a in enumerate(owned):
        for b in owned[i + 1 :]:
            if a == "" or b == "" or a == b or a.startswith(b + "/") or b.startswith(a + "/"):
                raise PipelineError(f"{where}.files: places {a!r} and {b!r} overlap")
    return SourceSpec(name=name, root=root, dest=dest, files=files)


def load_sources(path: str | os.PathLike) -> Sources:
    """Read and validate sources.yaml."""
    path = Path(path)
    return _from_mapping(load_yaml(path), path)


def _from_mapping(data: dict[str, Any], path: Path) -> Sources:
    origin = str(path)
    extra = set(data) - {"settings", "sources"}
    if extra:
        raise PipelineError(f"{origin}: unknown top-level key {sorted(extra)[0]}")
    settings = _parse_settings(data.get("settings"), origin)
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, dict) or not raw_sources:
        raise PipelineError(f"{origin}: key sources must be a non-empty mapping")
    sources = {str(n): _parse_source(str(n), raw, origin) for n, raw in raw_sources.items()}
    seen: dict[str, str] = {}
    for source in sources.values():
        for spec in source.files:
            # Archives of one root share a downloads folder, so their names must differ.
            if spec.name in seen:
                raise PipelineError(
                    f"{origin}: file {spec.name} appears in sources {seen[spec.name]} "
                    f"and {source.name}"
                )
            seen[spec.name] = source.name
    return Sources(path=path, settings=settings, sources=sources)


@contextlib.contextmanager
def _locked_dir(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a folder, so concurrent recorders edit the file in turn."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _key_column(line: str) -> int:
    """Column where a mapping key starts, after indentation and a list dash."""
    return len(line) - len(line.lstrip(" -"))


def _set_entry_value(lines: list[str], name_index: int, key: str, value: str) -> None:
    """Set ``key`` (null or absent) in the list entry whose name is ``lines[name_index]``."""
    column = _key_column(lines[name_index])

    def starts_entry(line: str) -> bool:
        return line.lstrip(" ").startswith("- ") and _key_column(line) == column

    start = name_index
    while not starts_entry(lines[start]) and start > 0:
        start -= 1
    pattern = re.compile(rf"^(\s*(?:-\s+)?){re.escape(key)}:\s*(?:null|~)?\s*(#.*)?$")
    for index in range(start, len(lines)):
        line = lines[index]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if index > start and (starts_entry(line) or _key_column(line) < column):
            break
        match = pattern.match(line)
        if match and _key_column(line) == column:
            comment = f"  {match.group(2)}" if match.group(2) else ""
            lines[index] = f"{match.group(1)}{key}: {value}{comment}"
            return
    # The entry has no line for the key yet: add one below its name.
    lines.insert(name_index + 1, f"{' ' * column}{key}: {value}")


def record_checksums(path: str | os.PathLike, file_name: str, size: int, sha256: str) -> bool:
    """Write ``size`` and ``sha256`` of ``file_name`` into sources.yaml where they are null.

    Returns True when the file was changed. Values already recorded are left alone (they
    were verified before this is called). The edit is checked by parsing the result.
    """
    path = Path(path)
    with _locked_dir(path.parent.resolve()):
        text = path.read_text(encoding="utf-8")
        current = load_sources(path)
        spec = next(
            (f for s in current.sources.values() for f in s.files if f.name == file_name), None
        )
        if spec is None:
            raise PipelineError(f"{path}: no file entry named {file_name}")
        if spec.size is not None and spec.sha256 is not None:
            return False
        lines = text.split("\n")
        name_line = re.compile(rf"^\s*(-\s+)?name:\s*['\"]?{re.escape(file_name)}['\"]?\s*(#.*)?$")
        starts = [i for i, line in enumerate(lines) if name_line.match(line)]
        if len(starts) != 1:
            raise PipelineError(f"{path}: cannot find the one 'name: {file_name}' line to record")
        where = f"{path}: file {file_name}"
        if spec.size is None:
            _set_entry_value(lines, starts[0], "size", str(size))
        if spec.sha256 is None:
            _set_entry_value(lines, starts[0], "sha256", sha256)
        new_text = "\n".join(lines)
        written = next(
            f
            for s in _parse_text(new_text, path).sources.values()
            for f in s.files
            if f.name == file_name
        )
        if written.size != (spec.size if spec.size is not None else size) or written.sha256 != (
            spec.sha256 or sha256
        ):
            raise PipelineError(f"{where}: recording the checksums did not round-trip")
        atomic_write_text(path, new_text)
    return True


def _parse_text(text: str, path: Path) -> Sources:
    """Validate sources.yaml content that is not on disk yet (the edited text)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path}: recording the checksums broke the YAML") from exc
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: recording the checksums broke the YAML")
    return _from_mapping(data, path)
