"""The LPIPS trunks as download sources: a plain single file, verified and placed atomically.

All traffic goes to a local server on 127.0.0.1 (tests/helpers/http_server.py); any other
host fails the test, so the real addresses in config/sources.yaml are read, never contacted.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest
import yaml
from helpers.http_server import Fault, reroute_requests, serve

from pixelnerf.download import ensure_source, load_sources
from pixelnerf.download.fetch import MARKER_NAME
from pixelnerf.errors import PipelineError

CHUNK = 1024
NAME = "vgg16-397923af.pth"
TRUNK_SOURCES = {"lpips_vgg16": "vgg16", "lpips_alexnet": "alexnet"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_sources(path: Path, entry: dict) -> Path:
    settings = {
        "chunk_bytes": CHUNK, "timeout_s": 10, "retries": 0, "keep_archives": False,
        "content_search_depth": 2, "downloads_dir": ".downloads",
        "gdrive_download_url": "https://drive.google.com/uc?export=download&id={id}",
    }
    sources = {"trunk": {"root": "checkpoints", "dest": "lpips/vgg16", "files": [entry]}}
    path.write_text(yaml.safe_dump({"settings": settings, "sources": sources}))
    return path


@pytest.fixture
def trunk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A server with one plain file, its sources file and the two roots."""
    data = random.Random(3).randbytes(7 * CHUNK + 5)
    with serve() as server:
        reroute_requests(monkeypatch, server.base_url)
        server.files[f"/{NAME}"] = data
        entry = {"name": NAME, "url": f"{server.base_url}/{NAME}"}
        sources = write_sources(tmp_path / "sources.yaml", entry)
        yield server, data, sources, tmp_path


def _ensure(sources: Path, root: Path) -> Path:
    return ensure_source("trunk", root / "data", sources, checkpoints_root=root / "ckpt",
                         show_progress=False)


def test_published_trunk_sources_are_plain_files_named_by_their_sha256() -> None:
    sources = load_sources(Path(__file__).parents[2] / "config" / "sources.yaml")
    for key, folder in TRUNK_SOURCES.items():
        source = sources.get(key)
        assert source.root == "checkpoints" and source.dest == f"lpips/{folder}"
        (spec,) = source.files
        assert not spec.is_archive and spec.content is None
        assert spec.url == f"https://download.pytorch.org/models/{spec.name}"
        # torchvision's names end in the first 8 hex digits of the file's sha256
        prefix = re.fullmatch(r".*-([0-9a-f]{8})\.pth", spec.name).group(1)
        assert spec.sha256 is not None and spec.sha256.startswith(prefix)
        assert spec.size is not None and spec.size > 0


def test_single_file_is_placed_marked_and_not_fetched_again(trunk) -> None:
    server, data, sources, root = trunk
    target = _ensure(sources, root)
    assert target == root / "ckpt" / "lpips" / "vgg16"
    assert (target / NAME).read_bytes() == data
    marker = json.loads((target / MARKER_NAME).read_text())
    assert marker["archives"] == [{"name": NAME, "size": len(data), "sha256": sha256(data)}]
    # nothing else is left: no .part, no copy in the downloads folder, no staging folder
    leftovers = [p for p in (root / "ckpt").rglob("*") if p.is_file()]
    assert sorted(leftovers) == sorted([target / NAME, target / MARKER_NAME,
                                        root / "ckpt" / ".downloads" / "trunk.lock"])
    assert not (root / "data").exists()
    requests_made = len(server.log)
    assert _ensure(sources, root) == target
    assert len(server.log) == requests_made


def test_recorded_checksums_are_checked_and_nothing_is_published_on_mismatch(trunk) -> None:
    server, data, sources, root = trunk
    entry = {"name": NAME, "url": f"{server.base_url}/{NAME}", "size": len(data),
             "sha256": sha256(data[::-1])}
    write_sources(sources, entry)
    with pytest.raises(PipelineError, match="checksum mismatch for vgg16-397923af.pth"):
        _ensure(sources, root)
    assert not (root / "ckpt" / "lpips").exists()
    entry["size"] = len(data) + 1
    write_sources(sources, entry)
    with pytest.raises(PipelineError, match="sources.yaml records"):
        _ensure(sources, root)
    assert not (root / "ckpt" / "lpips").exists()
    entry.update(size=len(data), sha256=sha256(data))
    write_sources(sources, entry)
    assert (_ensure(sources, root) / NAME).read_bytes() == data


def test_dropped_connection_resumes_on_the_next_run(trunk) -> None:
    server, data, sources, root = trunk
    server.faults[f"/{NAME}"] = [Fault("drop", after=3 * CHUNK)]
    with pytest.raises(PipelineError):
        _ensure(sources, root)
    part = root / "ckpt" / ".downloads" / f"{NAME}.part"
    assert part.stat().st_size == 3 * CHUNK
    assert not (root / "ckpt" / "lpips").exists()
    assert (_ensure(sources, root) / NAME).read_bytes() == data
    assert server.log[-1][1] == f"bytes={3 * CHUNK}-"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": NAME, "url": "http://x/y", "content": "a"}, "content is only for .zip"),
        ({"name": "a.zip", "url": "http://x/y"}, "content must be a non-empty string"),
        ({"name": "../up.pth", "url": "http://x/y"}, "name must be a file name"),
    ],
)
def test_bad_single_file_entry_names_the_key(tmp_path: Path, entry: dict, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        load_sources(write_sources(tmp_path / "s.yaml", entry))


def test_two_files_of_one_folder_do_not_overlap_unless_same_name(tmp_path: Path) -> None:
    settings = yaml.safe_load((Path(__file__).parents[2] / "config" / "sources.yaml")
                              .read_text())["settings"]
    files = [{"name": "a.pth", "url": "http://x/a"}, {"name": "b.pth", "url": "http://x/b"}]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"settings": settings,
                                    "sources": {"t": {"dest": "t", "files": files}}}))
    assert [f.placed_at for f in load_sources(path).get("t").files] == ["a.pth", "b.pth"]
    files.append({"name": "c.zip", "url": "http://x/c", "content": "x"})  # the whole of t
    path.write_text(yaml.safe_dump({"settings": settings,
                                    "sources": {"t": {"dest": "t", "files": files}}}))
    with pytest.raises(PipelineError, match="overlap"):
        load_sources(path)
