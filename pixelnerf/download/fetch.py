"""Make one source of sources.yaml ready on disk: download, verify, extract, publish.

ensure_source -> _fetch_archive (transfer, gdrive) -> _extract_into (archive) or
_place_file (any other file) -> _publish

Everything is built in a hidden staging folder ``<root>/.<source>.staging`` and appears
under its final name by one rename, with the completion marker already inside; a source
whose marker exists is never fetched again. Interrupted runs pick up where they stopped:
a ``.part`` file resumes, an archive already extracted is not extracted again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from pixelnerf.download import archive as zipsafe
from pixelnerf.download import diskio, gdrive, transfer
from pixelnerf.download.sources import (
    FileSpec,
    Settings,
    SourceSpec,
    load_sources,
    record_checksums,
)
from pixelnerf.errors import PipelineError
from pixelnerf.io import atomic_write_text

MARKER_NAME = ".complete.json"
STAGING_SUFFIX = ".staging"


@dataclass(frozen=True)
class ArchiveRecord:
    """What the completion marker says about one archive."""

    name: str
    size: int
    sha256: str


def source_root(source: SourceSpec, data_root: Path, checkpoints_root: Path) -> Path:
    """The root a source goes under (``root: data`` or ``root: checkpoints``)."""
    return Path(checkpoints_root if source.root == "checkpoints" else data_root)


def target_path(source: SourceSpec, root: Path) -> Path:
    """The folder a ready source occupies (for a merging source, its root)."""
    return root if source.merges else root / source.dest


def marker_path(source: SourceSpec, root: Path) -> Path:
    """The completion marker: inside the target, or beside the merged folders."""
    if source.merges:
        return root / f".{source.name}{MARKER_NAME}"
    return root / source.dest / MARKER_NAME


def completion_marker(
    name: str,
    data_root: str | os.PathLike,
    sources_path: str | os.PathLike,
    checkpoints_root: str | os.PathLike = "checkpoints",
) -> Path:
    """Where ``ensure_source(name, ...)`` writes its marker (a workflow rule's output)."""
    source = load_sources(sources_path).get(name)
    return marker_path(source, source_root(source, Path(data_root), Path(checkpoints_root)))


@contextlib.contextmanager
def _exclusive(lock_file: Path, name: str) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise PipelineError(
                f"another download of {name} is running (it holds {lock_file})"
            ) from exc
        yield
    finally:
        os.close(fd)


def _check_marker(marker: Path, source: SourceSpec) -> None:
    """One error line when a marker belongs to another source or to other archives."""
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        records = [ArchiveRecord(**item) for item in data["archives"]]
        owner = data["source"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PipelineError(f"{marker} is unreadable; remove it to download again") from exc
    if owner != source.name:
        raise PipelineError(f"{marker} marks source {owner!r}, not {source.name!r}")
    by_name = {record.name: record for record in records}
    for spec in source.files:
        record = by_name.get(spec.name)
        if record is None or (spec.sha256 is not None and record.sha256 != spec.sha256):
            what = f"{marker} and the folders it lists" if source.merges else marker.parent
            raise PipelineError(
                f"{marker} lists another {spec.name} than sources.yaml records; "
                f"remove {what} to download again"
            )


def _verify(spec: FileSpec, fetched: transfer.Fetched, path: Path) -> None:
    if spec.size is not None and fetched.size != spec.size:
        raise PipelineError(
            f"{spec.name} has {fetched.size} bytes, sources.yaml records {spec.size}; "
            f"removed {path}, run again to download it anew"
        )
    if spec.sha256 is not None and fetched.sha256 != spec.sha256:
        raise PipelineError(
            f"checksum mismatch for {spec.name}: sha256 {fetched.sha256}, sources.yaml records "
            f"{spec.sha256}; removed {path}, run again to download it anew"
        )


def _resolver(spec: FileSpec, settings: Settings) -> transfer.Resolver:
    if spec.url is not None:
        url = spec.url
        return lambda _session: url
    file_ids: list[str] = []

    def resolve(session: requests.Session) -> str:
        if not file_ids:
            if spec.gdrive_id is not None:
                file_ids.append(spec.gdrive_id)
            else:
                assert spec.gdrive_folder is not None  # sources.py requires one origin
                file_ids.append(
                    gdrive.find_in_folder(spec.gdrive_folder, spec.name, settings.timeout_s)
                )
        return gdrive.resolve_download_url(
            session, file_ids[0], settings.gdrive_download_url, spec.name, settings.timeout_s
        )

    return resolve


def _fetch_archive(
    spec: FileSpec, downloads: Path, settings: Settings, show_progress: bool
) -> tuple[Path, ArchiveRecord]:
    """The verified archive under ``downloads`` (fetched now unless a run left it there)."""
    final = downloads / spec.name
    if final.exists():
        size = final.stat().st_size
        fetched = transfer.Fetched(size, diskio.sha256_of(final, settings.chunk_bytes))
        path = final
    else:
        path = downloads / f"{spec.name}.part"
        fetched = transfer.download_file(
            _resolver(spec, settings),
            path,
            label=spec.name,
            expected_size=spec.size,
            chunk_bytes=settings.chunk_bytes,
            timeout_s=settings.timeout_s,
            retries=settings.retries,
            show_progress=show_progress,
        )
    try:
        _verify(spec, fetched, path)
    except PipelineError:
        path.unlink()
        raise
    if path != final:
        os.replace(path, final)
    return final, ArchiveRecord(spec.name, fetched.size, fetched.sha256)


def _extract_into(
    archive: Path, spec: FileSpec, tree: Path, staging: Path, settings: Settings
) -> None:
    """Extract ``archive`` and move its content root to ``tree/<into>``."""
    assert spec.content is not None  # sources.py requires it of every archive
    work = Path(tempfile.mkdtemp(prefix=".extract-", dir=staging))
    try:
        try:
            zipsafe.safe_extract(archive, work, settings.chunk_bytes)
            content = zipsafe.find_content_root(
                work, spec.content, settings.content_search_depth, archive
            )
        except zipsafe.ArchiveError as exc:
            # Downloading again is the remedy for a bad archive, so it must not be reused.
            archive.unlink()
            raise PipelineError(f"{exc}; removed it, run again to download it anew") from exc
        dest = tree.joinpath(*zipsafe.relative_parts(spec.into))
        zipsafe.remove_tree(dest)  # what an interrupted run of this archive left
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(content, dest)
    finally:
        zipsafe.remove_tree(work)


def _place_file(download: Path, spec: FileSpec, tree: Path) -> None:
    """Move a verified single-file download to ``tree/<into>/<name>`` (one rename)."""
    dest = tree.joinpath(*zipsafe.relative_parts(spec.placed_at))
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(download, dest)


def _marker_text(source: SourceSpec, records: list[ArchiveRecord], placed: list[str]) -> str:
    data = {
        "source": source.name,
        "archives": [asdict(record) for record in records],
        "placed": placed,
    }
    return json.dumps(data, indent=2) + "\n"


def _publish(source: SourceSpec, root: Path, staging: Path, records: list[ArchiveRecord]) -> None:
    """Move the staged tree into place; the marker is the last thing to appear."""
    tree = staging / "tree"
    marker = marker_path(source, root)
    if not source.merges:
        dest = root / source.dest
        atomic_write_text(tree / MARKER_NAME, _marker_text(source, records, [source.dest]))
        if dest.exists():
            # An empty folder is what a workflow engine makes for an expected output.
            dest.rmdir()
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tree, dest)
        return
    # Merging: the archive's top-level entries become entries of the root, one rename
    # each. Which ones belong to this source is fixed before the first rename, so a rerun
    # after an interruption knows the moved ones from foreign folders of the same name.
    plan_file = staging / "placed.json"
    if plan_file.exists():
        placed = json.loads(plan_file.read_text(encoding="utf-8"))
    else:
        placed = sorted(child.name for child in tree.iterdir())
        clashes = [name for name in placed if (root / name).exists()]
        if clashes:
            raise PipelineError(
                f"{root / clashes[0]} already exists and is not from download {source.name}; "
                "move it away and run again"
            )
        atomic_write_text(plan_file, json.dumps(placed))
    for name in placed:
        staged = tree / name
        if staged.exists() or staged.is_symlink():
            if (root / name).exists():
                raise PipelineError(f"{root / name} appeared during download {source.name}")
            os.rename(staged, root / name)
    atomic_write_text(marker, _marker_text(source, records, placed))


def _report_checksums(
    source: SourceSpec, records: list[ArchiveRecord], sources_path: Path, record: bool
) -> None:
    by_name = {r.name: r for r in records}
    for spec in source.files:
        got = by_name[spec.name]
        if spec.sha256 is not None and spec.size is not None:
            continue
        if record:
            if record_checksums(sources_path, spec.name, got.size, got.sha256):
                print(f"{spec.name}: recorded size and sha256 in {sources_path}", file=sys.stderr)
        else:
            print(
                f"{spec.name}: size {got.size}, sha256 {got.sha256} (not recorded in "
                f"{sources_path}; rerun with --record to save them)",
                file=sys.stderr,
            )


def _cleanup(staging: Path, archives: list[Path], keep_archives: bool) -> None:
    zipsafe.remove_tree(staging)
    if not keep_archives:
        for path in archives:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def ensure_source(
    name: str,
    data_root: str | os.PathLike,
    sources_path: str | os.PathLike,
    *,
    checkpoints_root: str | os.PathLike = "checkpoints",
    record: bool = False,
    show_progress: bool = True,
) -> Path:
    """Make source ``name`` of ``sources_path`` ready and return its folder.

    Does nothing when the completion marker exists. Otherwise downloads each archive
    (resuming a ``.part`` file), verifies the size and SHA-256 that sources.yaml records
    (``record=True`` writes them there when missing), extracts safely, and publishes the
    folder with its marker. Every failure is one :class:`PipelineError` line.
    """
    sources_path = Path(sources_path)
    sources = load_sources(sources_path)
    source = sources.get(name)
    settings = sources.settings
    root = source_root(source, Path(data_root), Path(checkpoints_root))
    target = target_path(source, root)
    marker = marker_path(source, root)
    downloads = root / settings.downloads_dir
    staging = root / f".{name}{STAGING_SUFFIX}"
    if marker.exists():
        _check_marker(marker, source)
        if staging.exists():  # a finished run stopped before tidying up
            archives = [downloads / spec.name for spec in source.files]
            _cleanup(staging, archives, settings.keep_archives)
        return target
    if not source.merges and target.exists() and any(target.iterdir()):
        raise PipelineError(
            f"{target} exists but is not a finished download of {name} (no {MARKER_NAME}); "
            "move it away and run again"
        )
    try:
        with _exclusive(downloads / f"{name}.lock", name):
            _build(source, root, staging, downloads, sources_path, record, show_progress, settings)
    except OSError as exc:
        raise diskio.disk_error(exc, exc.filename or root, f"preparing {name} in") from exc
    print(f"{name}: ready in {target}", file=sys.stderr)
    return target


def _build(
    source: SourceSpec,
    root: Path,
    staging: Path,
    downloads: Path,
    sources_path: Path,
    record: bool,
    show_progress: bool,
    settings: Settings,
) -> None:
    """Download, extract and publish every archive of ``source`` (under its lock)."""
    if marker_path(source, root).exists():  # another process finished while this one waited
        _check_marker(marker_path(source, root), source)
        return
    files_done = staging / "files"
    files_done.mkdir(parents=True, exist_ok=True)
    records: list[ArchiveRecord] = []
    archives: list[Path] = []
    for spec in source.files:
        done = files_done / f"{spec.name}.json"
        if done.exists():
            records.append(ArchiveRecord(**json.loads(done.read_text(encoding="utf-8"))))
            archives.append(downloads / spec.name)
            continue
        archive_path, got = _fetch_archive(spec, downloads, settings, show_progress)
        if spec.is_archive:
            _extract_into(archive_path, spec, staging / "tree", staging, settings)
        else:
            _place_file(archive_path, spec, staging / "tree")
        atomic_write_text(done, json.dumps(asdict(got)))
        records.append(got)
        archives.append(archive_path)
    _publish(source, root, staging, records)
    _report_checksums(source, records, sources_path, record)
    _cleanup(staging, archives, settings.keep_archives)
