"""Safe zip extraction, and finding the folder of an archive that holds the dataset.

safe_extract: the whole archive is checked before any byte is written: no member name is
absolute, holds '..' or a drive letter; no symbolic link, followed through every other link
of the archive, leads outside the target, and no member lies behind such a link; the
declared sizes add up to at most ``MAX_EXPANSION`` times the archive's own size (a zip bomb
is refused). Zip has no hard-link member type. Links are created after all regular files,
so no file is ever written through one, and checked again on disk once they exist.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from pixelnerf.download import diskio
from pixelnerf.errors import PipelineError

# macOS zip tools add resource forks under this folder; they are never dataset content.
_MACOS_METADATA = "__MACOSX"
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
# Datasets are PNGs, NumPy arrays and text: they expand about 1-3x. Below the floor any
# ratio is accepted, so a small archive of text files is never refused.
MAX_EXPANSION = 100
EXPANSION_FLOOR_BYTES = 64 << 20
_MAX_LINK_HOPS = 40  # as the kernel's limit: more means a loop


class ArchiveError(PipelineError):
    """The archive itself is bad (truncated, corrupt, escaping members, wrong content).

    Unlike a full disk, downloading it again is the remedy, so the caller removes it.
    """


def _member_parts(archive: Path, name: str) -> tuple[str, ...]:
    """The path components of a member, or one error line when it would escape."""
    normal = name.replace("\\", "/")
    parts = tuple(p for p in normal.split("/") if p not in ("", "."))
    if normal.startswith("/") or _DRIVE_LETTER.match(normal) or "\x00" in normal:
        raise ArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    if ".." in parts:
        raise ArchiveError(f"{archive}: member {name!r} points outside the target; refusing")
    return parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _copy_member(
    archive_file: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, chunk: int
) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with archive_file.open(info) as source, open(dest, "wb") as handle:
        for block in iter(lambda: source.read(chunk), b""):
            diskio.write_chunk(handle, block)


def safe_extract(archive: Path, target: Path, chunk_bytes: int) -> None:
    """Extract the zip ``archive`` into the (new, empty) folder ``target``.

    Raises one PipelineError for an unreadable, truncated or corrupt archive, a member
    escaping ``target`` and a full disk; the caller removes ``target`` then.
    """
    try:
        archive_file = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArchiveError(f"{archive} is not a complete zip archive ({exc})") from exc
    root = os.path.realpath(target)
    links: list[tuple[Path, str]] = []
    with archive_file:
        try:
            members, link_texts = _plan(archive, archive_file)
            for info, parts in members:
                dest = target.joinpath(*parts)
                if parts in link_texts:
                    links.append((dest, link_texts[parts]))
                elif info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                else:
                    _copy_member(archive_file, info, dest, chunk_bytes)
        except (zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError) as exc:
            raise ArchiveError(f"{archive} is corrupt ({exc})") from exc
        except OSError as exc:
            raise diskio.disk_error(exc, target, f"extracting {archive.name} into") from exc
    for dest, link in links:
        # A link's own folder may lie behind an earlier link: it must resolve inside too.
        _check_inside(archive, target, root, dest.parent, link)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(link, dest)
        except OSError as exc:
            raise ArchiveError(f"{archive}: cannot create link {dest}: {exc.strerror}") from exc
        _check_inside(archive, target, root, dest, link)
    # Checked again once all links exist: a later link can redirect an earlier one.
    for dest, link in links:
        _check_inside(archive, target, root, dest, link)


def _plan(archive: Path, archive_file: zipfile.ZipFile) -> tuple[
        list[tuple[zipfile.ZipInfo, tuple[str, ...]]], dict[tuple[str, ...], str]]:
    """The members to extract with their path parts, and each link's text; one error line
    for the first member that escapes or an archive that expands too far (nothing written)."""
    members = []
    for info in archive_file.infolist():
        parts = _member_parts(archive, info.filename)
        if parts and parts[0] != _MACOS_METADATA:
            members.append((info, parts))
    declared = sum(info.file_size for info, _ in members)
    size = archive.stat().st_size
    if declared > max(MAX_EXPANSION * size, EXPANSION_FLOOR_BYTES):
        raise ArchiveError(
            f"{archive}: its members declare {declared} bytes, {declared / max(size, 1):.0f} "
            f"times its size (at most {MAX_EXPANSION}); refusing to extract"
        )
    links: dict[tuple[str, ...], str] = {}
    for info, parts in members:
        if _is_symlink(info):
            link = archive_file.read(info).decode("utf-8", errors="strict")
            if link.startswith("/") or _DRIVE_LETTER.match(link):
                raise ArchiveError(f"{archive}: link {info.filename!r} points to the absolute "
                                   f"path {link!r}; refusing to extract")
            links[parts] = link
    for info, parts in members:
        # A link leads where its text leads from its folder; any member's path must not
        # pass through a link that leaves the target.
        path = parts[:-1] + tuple(links[parts].split("/")) if parts in links else parts
        if _resolve_in_archive(path, links) is None:
            raise ArchiveError(f"{archive}: member {info.filename!r} leads outside the target "
                               f"through a link; refusing to extract")
    return members, links


def _resolve_in_archive(parts: tuple[str, ...],
                        links: dict[tuple[str, ...], str]) -> tuple[str, ...] | None:
    """Where ``parts`` (relative to the target) lead once every link of the archive exists;
    None when they leave the target or loop."""
    resolved: list[str] = []
    pending = list(parts)
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        resolved.append(part)
        link = links.get(tuple(resolved))
        if link is not None and pending:  # a final link is the member itself, not followed
            hops += 1
            if hops > _MAX_LINK_HOPS:
                return None
            resolved.pop()
            pending = link.split("/") + pending
    return tuple(resolved)


def _check_inside(archive: Path, target: Path, root: str, path: Path, link: str) -> None:
    if not _inside(os.path.realpath(path), root):
        rel = path.relative_to(target)
        raise ArchiveError(
            f"{archive}: link {rel} (-> {link}) points outside the target; refusing to extract"
        )


def find_content_root(extracted: Path, pattern: str, max_depth: int, archive: Path) -> Path:
    """The one folder, at most ``max_depth`` levels down, that holds ``pattern`` (a glob).

    Archives differ in how many wrapper folders they add (``NMR_Dataset/``,
    ``rs_dtu_4/``); the dataset's own files say where it starts.
    """
    level = [extracted]
    for _ in range(max_depth + 1):
        hits = [folder for folder in level if any(folder.glob(pattern))]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            found = ", ".join(str(h.relative_to(extracted)) for h in hits)
            raise ArchiveError(f"{archive}: {pattern} is in several folders ({found})")
        level = [
            child
            for folder in level
            for child in sorted(folder.iterdir())
            if child.is_dir() and not child.is_symlink()
        ]
    raise ArchiveError(
        f"{archive} does not hold {pattern} within {max_depth} folders of its top; "
        "is it the right archive?"
    )


def remove_tree(path: Path) -> None:
    """Remove a file, link or folder if it exists."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def relative_parts(path: str) -> tuple[str, ...]:
    """The components of a validated relative path from sources.yaml ('' -> ())."""
    return PurePosixPath(path).parts if path else ()
