"""Downloads: resume, verification, safe extraction and every failure as one error line.

All traffic goes to a local server (tests/helpers/http_server.py); Drive hosts are rerouted to it
and any other host fails the test, so the real addresses in config/sources.yaml are read
but never contacted.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import random
import re
import stat
import zipfile
from pathlib import Path

import pytest
import yaml
from helpers.http_server import Fault, closed_port, reroute_requests, serve

from pixelnerf.cli import main as cli_main
from pixelnerf.download import completion_marker, diskio, ensure_source, load_sources
from pixelnerf.download.fetch import MARKER_NAME
from pixelnerf.download.sources import record_checksums
from pixelnerf.errors import PipelineError

CHUNK = 1024
FOLDER_ID = "F" * 33
WEIGHTS_ID = "W" * 33


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload(seed: int, size: int = 5 * CHUNK) -> bytes:
    """Incompressible bytes, so an archive spans several chunks."""
    return random.Random(seed).randbytes(size)


def make_zip(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


NMR_FILES = {
    "NMR_Dataset/metadata.yaml": b'{"02691156": {"id": "02691156", "name": "airplane"}}',
    "NMR_Dataset/02691156/softras_test.lst": b"obj1\n",
    "NMR_Dataset/02691156/obj1/image/0000.png": payload(1),
}


def settings(**overrides: object) -> dict:
    values = {
        "chunk_bytes": CHUNK,
        "timeout_s": 10,
        "retries": 0,
        "keep_archives": False,
        "content_search_depth": 2,
        "downloads_dir": ".downloads",
        "gdrive_download_url": "https://drive.google.com/uc?export=download&id={id}",
    }
    values.update(overrides)
    return values


def write_sources(path: Path, sources: dict, **overrides: object) -> Path:
    path.write_text(yaml.safe_dump({"settings": settings(**overrides), "sources": sources}))
    return path


def nmr_source(url: str, **checks: object) -> dict:
    entry = {"name": "NMR_Dataset.zip", "url": url, "content": "metadata.yaml"}
    entry.update(checks)
    return {"nmr": {"dest": "NMR_Dataset", "files": [entry]}}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    with serve() as state:
        reroute_requests(monkeypatch, state.base_url)
        yield state


@pytest.fixture
def nmr(server, tmp_path: Path):
    """A server with NMR_Dataset.zip, its sources file and a data root."""
    archive = make_zip(NMR_FILES)
    server.files["/NMR_Dataset.zip"] = archive
    url = server.base_url + "/NMR_Dataset.zip"
    sources = write_sources(tmp_path / "sources.yaml", nmr_source(url))
    return server, archive, sources, tmp_path / "data"


def assert_nothing_complete(root: Path) -> None:
    """No marker and no folder under a final name: only hidden work files may remain."""
    if root.exists():
        visible = [p.name for p in root.iterdir() if not p.name.startswith(".")]
        assert visible == []
        assert not list(root.rglob(MARKER_NAME))
        assert not list(root.rglob("*.complete.json"))


def test_published_sources_file_is_valid(project_root: Path) -> None:
    sources = load_sources(project_root / "config" / "sources.yaml")
    assert {"nmr", "srn_cars", "srn_chairs", "dtu", "multi_chair", "pretrained"} <= set(
        sources.sources
    )
    names = {f.name for s in sources.sources.values() for f in s.files}
    assert {"NMR_Dataset.zip", "srn_cars.zip", "srn_chairs.zip", "dtu_dataset.zip"} <= names
    assert sources.get("nmr").files[0].url.startswith("https://")
    assert sources.get("pretrained").root == "checkpoints"


def test_download_extracts_marks_and_is_not_fetched_again(nmr) -> None:
    server, archive, sources, data = nmr
    target = ensure_source("nmr", data, sources, show_progress=False)
    assert target == data / "NMR_Dataset"
    assert (target / "metadata.yaml").read_bytes() == NMR_FILES["NMR_Dataset/metadata.yaml"]
    image = target / "02691156" / "obj1" / "image" / "0000.png"
    assert image.read_bytes() == NMR_FILES["NMR_Dataset/02691156/obj1/image/0000.png"]
    marker = json.loads((target / MARKER_NAME).read_text())
    assert marker["source"] == "nmr"
    assert marker["archives"] == [
        {"name": "NMR_Dataset.zip", "size": len(archive), "sha256": sha256(archive)}
    ]
    assert completion_marker("nmr", data, sources) == target / MARKER_NAME
    assert sorted(p.name for p in data.iterdir()) == [".downloads", "NMR_Dataset"]
    assert list((data / ".downloads").glob("*.zip*")) == []  # archive removed, no .part
    requests_before = len(server.log)
    assert ensure_source("nmr", data, sources, show_progress=False) == target
    assert len(server.log) == requests_before


def test_progress_bar_shows_bytes_and_rate(nmr, capsys) -> None:
    ensure_source("nmr", nmr[3], nmr[2], show_progress=True)
    err = capsys.readouterr().err
    assert "NMR_Dataset.zip" in err and "B/s" in err and "ready in" in err


def test_marker_from_another_archive_is_reported(nmr) -> None:
    server, archive, sources, data = nmr
    ensure_source("nmr", data, sources, show_progress=False)
    url = server.base_url + "/NMR_Dataset.zip"
    write_sources(sources, nmr_source(url, size=len(archive), sha256="b" * 64))
    with pytest.raises(PipelineError, match="lists another NMR_Dataset.zip"):
        ensure_source("nmr", data, sources, show_progress=False)


def test_concurrent_download_of_the_same_source_is_refused(nmr) -> None:
    server, archive, sources, data = nmr
    lock = data / ".downloads" / "nmr.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(PipelineError, match="another download of nmr is running"):
            ensure_source("nmr", data, sources, show_progress=False)
    assert server.log == []


def test_record_writes_checksums_once_and_later_downloads_are_verified(nmr, capsys) -> None:
    server, archive, sources, data = nmr
    text = "# documented\n" + sources.read_text()
    sources.write_text(text)
    argv = ["download", "nmr", "--data-root", str(data), "--sources", str(sources), "--quiet"]
    assert cli_main([*argv, "--record"]) == 0
    spec = load_sources(sources).get("nmr").files[0]
    assert (spec.size, spec.sha256) == (len(archive), sha256(archive))
    assert sources.read_text().startswith("# documented\n")
    assert record_checksums(sources, "NMR_Dataset.zip", 1, "0" * 64) is False  # once only

    # The server now serves another file under the same name: it is refused.
    server.files["/NMR_Dataset.zip"] = make_zip({**NMR_FILES, "NMR_Dataset/extra": b"x"})
    other = data.parent / "other"
    assert cli_main([*argv[:3], str(other), *argv[4:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pixelnerf: error: ")
    assert "NMR_Dataset.zip" in err[-1] and ("checksum" in err[-1] or "bytes" in err[-1])
    assert_nothing_complete(other)
    assert list((other / ".downloads").glob("NMR_Dataset.zip*")) == []


def test_checksum_mismatch_with_same_size(nmr) -> None:
    server, archive, sources, data = nmr
    write_sources(
        sources,
        nmr_source(server.base_url + "/NMR_Dataset.zip", size=len(archive), sha256="a" * 64),
    )
    with pytest.raises(PipelineError, match="checksum mismatch for NMR_Dataset.zip"):
        ensure_source("nmr", data, sources, show_progress=False)
    assert_nothing_complete(data)
    assert list((data / ".downloads").glob("NMR_Dataset.zip*")) == []


def test_dropped_connection_resumes_with_range_on_the_next_run(nmr) -> None:
    server, archive, sources, data = nmr
    server.faults["/NMR_Dataset.zip"] = [Fault("drop", after=2 * CHUNK + 100)]
    with pytest.raises(PipelineError, match="connection dropped .* run again to resume"):
        ensure_source("nmr", data, sources, show_progress=False)
    kept = (data / ".downloads" / "NMR_Dataset.zip.part").read_bytes()
    # Whole chunks that arrived are kept (a prefix of the file); the rest comes next run.
    assert 2 * CHUNK <= len(kept) < len(archive) and archive.startswith(kept)
    assert_nothing_complete(data)
    target = ensure_source("nmr", data, sources, show_progress=False)
    assert (target / MARKER_NAME).exists()
    assert server.log[-1] == ("/NMR_Dataset.zip", f"bytes={len(kept)}-")


def test_retries_resume_within_one_run(nmr) -> None:
    server, archive, sources, data = nmr
    write_sources(sources, nmr_source(server.base_url + "/NMR_Dataset.zip"), retries=2)
    server.faults["/NMR_Dataset.zip"] = [Fault("drop", after=CHUNK), Fault("drop", after=CHUNK)]
    target = ensure_source("nmr", data, sources, show_progress=False)
    assert (target / "metadata.yaml").exists()
    assert [r for _, r in server.log] == [None, f"bytes={CHUNK}-", f"bytes={2 * CHUNK}-"]


def test_server_ignoring_range_restarts_cleanly(nmr) -> None:
    server, archive, sources, data = nmr
    part = data / ".downloads" / "NMR_Dataset.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(archive[: 3 * CHUNK])
    server.ignore_range = True
    target = ensure_source("nmr", data, sources, show_progress=False)
    marker = json.loads((target / MARKER_NAME).read_text())
    assert marker["archives"][0]["sha256"] == sha256(archive)
    assert server.log[-1][1] == f"bytes={3 * CHUNK}-"


def test_complete_part_file_is_finished_without_refetching(nmr) -> None:
    server, archive, sources, data = nmr
    part = data / ".downloads" / "NMR_Dataset.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(archive)  # a run that stopped after the last byte, before the rename
    target = ensure_source("nmr", data, sources, show_progress=False)
    assert (target / "metadata.yaml").exists()
    assert server.log == [("/NMR_Dataset.zip", f"bytes={len(archive)}-")]


@pytest.mark.parametrize("status", [404, 503])
def test_http_error_is_one_line(nmr, status: int) -> None:
    server, archive, sources, data = nmr
    server.faults["/NMR_Dataset.zip"] = [Fault("status", status=status)]
    with pytest.raises(PipelineError, match=f"HTTP {status} .* NMR_Dataset.zip") as info:
        ensure_source("nmr", data, sources, show_progress=False)
    assert "\n" not in str(info.value)
    assert_nothing_complete(data)


def test_no_network_is_one_line(tmp_path: Path, server) -> None:
    sources = write_sources(
        tmp_path / "sources.yaml", nmr_source(f"http://127.0.0.1:{closed_port()}/NMR_Dataset.zip")
    )
    with pytest.raises(PipelineError, match="cannot connect to 127.0.0.1:.* NMR_Dataset.zip"):
        ensure_source("nmr", tmp_path / "data", sources, show_progress=False)
    assert_nothing_complete(tmp_path / "data")


def _corrupt(archive: bytes) -> bytes:
    # Flip bytes inside the stored image: the CRC check on extraction fails.
    index = archive.index(NMR_FILES["NMR_Dataset/02691156/obj1/image/0000.png"][:64])
    return (
        archive[: index + 10]
        + bytes(b ^ 0xFF for b in archive[index + 10 : index + 20])
        + (archive[index + 20 :])
    )


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda a: a[: len(a) // 2], "not a complete zip archive"),
        (_corrupt, "is corrupt"),
        (lambda a: make_zip({"other/readme.txt": b"hi"}), "does not hold metadata.yaml"),
    ],
    ids=["truncated", "bad-crc", "wrong-content"],
)
def test_bad_archive_is_removed_and_nothing_published(nmr, mangle, message: str) -> None:
    server, archive, sources, data = nmr
    server.files["/NMR_Dataset.zip"] = mangle(archive)
    with pytest.raises(PipelineError, match=message):
        ensure_source("nmr", data, sources, show_progress=False)
    assert_nothing_complete(data)
    assert list((data / ".downloads").glob("NMR_Dataset.zip*")) == []
    server.files["/NMR_Dataset.zip"] = archive  # the next run downloads it anew
    assert (ensure_source("nmr", data, sources, show_progress=False) / MARKER_NAME).exists()


@pytest.mark.parametrize(
    ("files", "links"),
    [
        ({"../evil.txt": b"x"}, {}),
        ({"NMR_Dataset/a/../../../evil.txt": b"x"}, {}),
        ({"/tmp/evil.txt": b"x"}, {}),
        ({}, {"NMR_Dataset/escape": "../../../outside"}),
        ({}, {"NMR_Dataset/abs": "/etc"}),
        # Each link alone stays inside; together they lead out.
        ({}, {"NMR_Dataset/here": ".", "NMR_Dataset/up": "here/../.."}),
        # A link that only escapes once a later one exists, then a link created through it.
        ({}, {"NMR_Dataset/a": "b/../..", "NMR_Dataset/b": ".", "NMR_Dataset/a/evil.txt": "x"}),
    ],
    ids=[
        "dotdot",
        "nested-dotdot",
        "absolute",
        "link-out",
        "link-absolute",
        "link-chain",
        "link-redirected",
    ],
)
def test_member_escaping_the_target_is_refused(nmr, files, links) -> None:
    server, _, sources, data = nmr
    server.files["/NMR_Dataset.zip"] = make_zip({**NMR_FILES, **files}, links)
    with pytest.raises(PipelineError, match="refusing") as info:
        ensure_source("nmr", data, sources, show_progress=False)
    assert "\n" not in str(info.value)
    assert_nothing_complete(data)
    # os.walk also lists dangling links, which Path.rglob leaves out.
    assert [d for d, _, names in os.walk(data.parent) if "evil.txt" in names] == []


def test_link_inside_the_target_is_kept(nmr) -> None:
    server, _, sources, data = nmr
    server.files["/NMR_Dataset.zip"] = make_zip(NMR_FILES, {"NMR_Dataset/latest": "02691156/obj1"})
    target = ensure_source("nmr", data, sources, show_progress=False)
    assert (target / "latest" / "image" / "0000.png").is_file()


@pytest.mark.parametrize("downloading", [True, False], ids=["downloading", "extracting"])
def test_full_disk_is_one_line_and_the_next_run_finishes(nmr, monkeypatch, downloading) -> None:
    server, archive, sources, data = nmr
    original = diskio.write_chunk
    written = []

    def full_disk(handle, chunk):
        if handle.name.endswith(".part") == downloading and written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(chunk))
        original(handle, chunk)

    monkeypatch.setattr(diskio, "write_chunk", full_disk)
    with pytest.raises(PipelineError, match="disk full while") as info:
        ensure_source("nmr", data, sources, show_progress=False)
    assert "\n" not in str(info.value)
    assert_nothing_complete(data)
    monkeypatch.setattr(diskio, "write_chunk", original)
    requests_before = len(server.log)
    target = ensure_source("nmr", data, sources, show_progress=False)
    assert (target / "metadata.yaml").exists()
    # A verified archive survives a failed extraction: it is not downloaded twice.
    assert (len(server.log) > requests_before) == downloading


def test_existing_folder_without_marker_is_not_overwritten(nmr) -> None:
    server, _, sources, data = nmr
    (data / "NMR_Dataset").mkdir(parents=True)
    (data / "NMR_Dataset" / "mine.txt").write_text("keep")
    with pytest.raises(PipelineError, match="not a finished download of nmr"):
        ensure_source("nmr", data, sources, show_progress=False)
    assert server.log == []
    (data / "NMR_Dataset" / "mine.txt").unlink()  # an empty folder (a workflow's) is fine
    assert (ensure_source("nmr", data, sources, show_progress=False) / MARKER_NAME).exists()


def _drive(server, name: str, data: bytes, file_id: str) -> None:
    server.drive_files[file_id] = (name, data)


@pytest.mark.parametrize("confirm", [True, False], ids=["confirmation-page", "direct"])
def test_drive_folder_archives_are_listed_downloaded_and_placed(
    server, tmp_path: Path, confirm: bool
) -> None:
    server.drive_confirm = confirm
    splits = {}
    for index, split in enumerate(("train", "test")):
        name = f"multi_chair_{split}.zip"
        splits[split] = make_zip({f"{split}/scene{index}/transforms.json": b"{}"})
        _drive(server, name, splits[split], f"{split[0].upper()}{index}" * 20)
    _drive(server, "unrelated.zip", b"zz", "U" * 30)
    server.drive_folders[FOLDER_ID] = ("pixelnerf data", sorted(server.drive_files))
    files = [
        {
            "name": f"multi_chair_{split}.zip",
            "gdrive_folder": FOLDER_ID,
            "content": "*/transforms.json",
            "into": split,
        }
        for split in splits
    ]
    sources = write_sources(
        tmp_path / "sources.yaml", {"multi_chair": {"dest": "multi_chair", "files": files}}
    )
    target = ensure_source("multi_chair", tmp_path / "data", sources, show_progress=False)
    assert (target / "train" / "scene0" / "transforms.json").exists()
    assert (target / "test" / "scene1" / "transforms.json").exists()
    paths = [path.split("?")[0] for path, _ in server.log]
    assert paths.count("/embeddedfolderview") == 2
    assert ("/download" in paths) == confirm


def test_drive_file_missing_from_folder_names_what_is_there(server, tmp_path: Path) -> None:
    _drive(server, "srn_chairs.zip", b"zz", "C" * 30)
    server.drive_folders[FOLDER_ID] = ("data", ["C" * 30])
    files = [{"name": "srn_cars.zip", "gdrive_folder": FOLDER_ID, "content": "cars_train"}]
    sources = write_sources(tmp_path / "s.yaml", {"srn_cars": {"dest": "srn_cars", "files": files}})
    listed = r"has no file srn_cars.zip \(it lists: srn_chairs.zip\)"
    with pytest.raises(PipelineError, match=listed):
        ensure_source("srn_cars", tmp_path / "data", sources, show_progress=False)


def test_weights_merge_into_the_checkpoints_root(server, tmp_path: Path) -> None:
    weights = make_zip(
        {
            "checkpoints/dtu/pixel_nerf_latest": payload(2),
            "checkpoints/sn64/pixel_nerf_latest": payload(3),
        }
    )
    _drive(server, "pixel_nerf_weights.zip", weights, WEIGHTS_ID)
    files = [{"name": "weights.zip", "gdrive_id": WEIGHTS_ID, "content": "dtu/pixel_nerf_latest"}]
    sources = write_sources(
        tmp_path / "s.yaml", {"pretrained": {"root": "checkpoints", "dest": ".", "files": files}}
    )
    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "sn64").mkdir(parents=True)  # trained here: must not be overwritten
    run = [
        "download",
        "pretrained",
        "--sources",
        str(sources),
        "--quiet",
        "--data-root",
        str(tmp_path / "data"),
        "--checkpoints-root",
        str(checkpoints),
    ]
    with pytest.raises(PipelineError, match="sn64 already exists"):
        ensure_source(
            "pretrained",
            tmp_path / "data",
            sources,
            checkpoints_root=checkpoints,
            show_progress=False,
        )
    assert not (checkpoints / "dtu").exists()
    (checkpoints / "sn64").rmdir()
    assert cli_main(run) == 0
    assert (checkpoints / "dtu" / "pixel_nerf_latest").read_bytes() == payload(2)
    assert (checkpoints / "sn64" / "pixel_nerf_latest").read_bytes() == payload(3)
    marker = json.loads((checkpoints / ".pretrained.complete.json").read_text())
    assert marker["placed"] == ["dtu", "sn64"]
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"url": "http://x/a.zip", "gdrive_id": "y"}, "exactly one of url"),
        ({"url": "http://x/a.zip", "sha256": "xyz"}, "sha256 must be null or 64"),
        ({"url": "http://x/a.zip", "into": "../up"}, "into must be a relative path"),
        ({"url": "http://x/a.zip", "colour": 1}, "unknown key colour"),
    ],
)
def test_bad_sources_entry_names_the_key(tmp_path: Path, entry: dict, message: str) -> None:
    files = [{"name": "a.zip", "content": "x", **entry}]
    sources = write_sources(tmp_path / "s.yaml", {"a": {"dest": "a", "files": files}})
    with pytest.raises(PipelineError, match=message):
        load_sources(sources)


def test_record_edits_only_the_two_lines_of_that_entry(project_root: Path, tmp_path: Path) -> None:
    published = (project_root / "config" / "sources.yaml").read_text()
    # Start from a copy with nothing recorded yet, as a first user has it.
    published = re.sub(r"(?m)^(\s+)(size|sha256): (?!null)\S+", r"\1\2: null", published)
    copy = tmp_path / "sources.yaml"
    copy.write_text(published)
    name = load_sources(copy).get("multi_chair").files[1].name
    assert record_checksums(copy, name, 1234, "c" * 64)
    before, after = published.splitlines(), copy.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert [b.strip() for _, b in changed] == ["size: 1234", f"sha256: {'c' * 64}"]
    loaded = load_sources(copy).sources.values()
    records = {f.name: (f.size, f.sha256) for s in loaded for f in s.files}
    assert records[name] == (1234, "c" * 64)
    assert {v for k, v in records.items() if k != name} == {(None, None)}
