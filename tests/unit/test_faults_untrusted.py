"""Untrusted files: every ``torch.load`` of the package loads weights only (no pickled code),
the training state included; archives with escaping names or links, or that expand far
beyond their size, are refused before anything is written."""

from __future__ import annotations

import ast
import io
import os
import zipfile
from pathlib import Path

import pytest
from test_download import NMR_FILES, make_zip

import pixelnerf
from pixelnerf.download.archive import EXPANSION_FLOOR_BYTES, MAX_EXPANSION, safe_extract
from pixelnerf.errors import PipelineError

ESCAPES = {
    "dotdot": ({"../evil.txt": b"x"}, {}),
    "absolute": ({"/tmp/evil.txt": b"x"}, {}),
    "link-out": ({}, {"NMR_Dataset/escape": "../../outside"}),
    "link-absolute": ({}, {"NMR_Dataset/abs": "/etc"}),
    "link-chain": ({}, {"NMR_Dataset/here": ".", "NMR_Dataset/up": "here/../.."}),
    "file-behind-link": ({"NMR_Dataset/out/evil.txt": b"x"}, {"NMR_Dataset/out": "../.."}),
    "link-loop": ({"NMR_Dataset/a/b/f.txt": b"x"}, {"NMR_Dataset/a": "a"}),
}


def extract(tmp_path: Path, data: bytes) -> Path:
    archive = tmp_path / "a.zip"
    archive.write_bytes(data)
    target = tmp_path / "target"
    target.mkdir()
    safe_extract(archive, target, 1 << 16)
    return target


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escaping_members_are_refused_before_anything_is_written(tmp_path, name) -> None:
    files, links = ESCAPES[name]
    with pytest.raises(PipelineError, match="refusing") as info:
        extract(tmp_path, make_zip({**NMR_FILES, **files}, links))
    assert "\n" not in str(info.value)
    assert list((tmp_path / "target").iterdir()) == []  # not even the good members
    assert [d for d, _, names in os.walk(tmp_path.parent) if "evil.txt" in names] == []


def test_links_that_stay_inside_are_extracted(tmp_path) -> None:
    links = {"NMR_Dataset/latest": "02691156/obj1", "NMR_Dataset/up/x": "../02691156"}
    target = extract(tmp_path, make_zip(NMR_FILES, links))
    assert (target / "NMR_Dataset" / "latest" / "image" / "0000.png").is_file()


def bomb(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("NMR_Dataset/metadata.yaml", b"{}")
        with archive.open("NMR_Dataset/zeros.bin", "w", force_zip64=True) as member:
            block = bytes(1 << 20)
            for _ in range(size >> 20):
                member.write(block)
    return buffer.getvalue()


def test_an_archive_expanding_far_beyond_its_size_is_refused(tmp_path) -> None:
    data = bomb(EXPANSION_FLOOR_BYTES + (1 << 20))
    assert len(data) * MAX_EXPANSION < EXPANSION_FLOOR_BYTES  # the ratio is what refuses it
    with pytest.raises(PipelineError, match=r"declare \d+ bytes, \d+ times its size"):
        extract(tmp_path, data)
    assert list((tmp_path / "target").iterdir()) == []


def test_small_compressible_archives_are_accepted(tmp_path) -> None:
    target = extract(tmp_path, bomb(4 << 20))  # 1000x, but far below the floor
    assert (target / "NMR_Dataset" / "zeros.bin").stat().st_size == 4 << 20


def _torch_loads(source: str) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"]


def _weights_only(call: ast.Call) -> bool:
    return any(k.arg == "weights_only" and isinstance(k.value, ast.Constant)
               and k.value.value is True for k in call.keywords)


def test_every_torch_load_of_the_package_is_weights_only() -> None:
    assert not _weights_only(_torch_loads("torch.load(f)")[0])  # the check can fail
    calls = {}
    for path in Path(pixelnerf.__file__).parent.rglob("*.py"):
        for call in _torch_loads(path.read_text(encoding="utf-8")):
            calls[f"{path.name}:{call.lineno}"] = _weights_only(call)
    assert len(calls) >= 5 and all(calls.values()), calls


def test_the_training_state_loads_with_weights_only(tmp_path) -> None:
    import torch

    from pixelnerf.train.checkpoint import STATE, Checkpointer

    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    Checkpointer(tmp_path).save(model, optimizer, step=1, seconds=0.5)
    state = torch.load(tmp_path / STATE, weights_only=True)
    assert state["step"] == 1 and "rng" in state and state["optimizer"]["state"]
