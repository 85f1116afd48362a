"""The inference plan and the typed model and renderer sections: resolved once, printed in
one line, recorded in done.json; each section's keys and descriptions agree with the schema;
no module of the package imports itself back through another."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest
import torch

import pixelnerf
from pixelnerf.config import load_schema
from pixelnerf.errors import PipelineError
from pixelnerf.model.config import (
    CodeConfig,
    EncoderConfig,
    GlobalEncoderConfig,
    MLPConfig,
    ModelConfig,
)
from pixelnerf.model.plan import InferencePlan
from pixelnerf.render import RendererConfig, resolve_plan

PACKAGE = Path(pixelnerf.__file__).resolve().parent


def schema_sections() -> dict[str, tuple[type, dict]]:
    schema = load_schema("experiment.schema.yaml")
    model = schema["properties"]["model"]["properties"]
    definitions = schema["definitions"]
    return {
        "renderer": (RendererConfig, schema["properties"]["renderer"]["properties"]),
        "model": (ModelConfig, model),
        "model.code": (CodeConfig, model["code"]["properties"]),
        "model.encoder": (EncoderConfig, definitions["encoder"]["properties"]),
        "model.global_encoder": (GlobalEncoderConfig, definitions["global_encoder"]["properties"]),
        "model.mlp_*": (MLPConfig, definitions["mlp"]["properties"]),
    }


@pytest.mark.parametrize("name", list(schema_sections()))
def test_a_section_has_the_schema_keys_and_its_descriptions(name):
    cls, properties = schema_sections()[name]
    fields = {field.name: field for field in dataclasses.fields(cls)}
    assert set(fields) == set(properties), name
    for key, field in fields.items():
        assert field.metadata.get("doc"), f"{name}.{key} has no description"
        if "description" in properties[key]:
            assert properties[key]["description"] == field.metadata["doc"], f"{name}.{key}"


def test_the_sections_are_frozen_and_refuse_unknown_keys():
    config = RendererConfig.from_mapping({"n_coarse": 8})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n_coarse = 9
    with pytest.raises(PipelineError, match="^renderer: unknown key"):
        RendererConfig.from_mapping({"n_corse": 8})
    with pytest.raises(PipelineError, match="^model.mlp_coarse: unknown key width"):
        ModelConfig.from_mapping({"mlp_coarse": {"width": 8}})
    model = ModelConfig.from_mapping({"mlp_coarse": {"type": "resnet"},
                                      "mlp_fine": {"type": "empty"}})
    assert model.mlp_fine is None and model.mlps() == (model.mlp_coarse,)


def test_the_demo_plan_on_a_cpu(project_root):
    from pixelnerf.config import load_experiment

    experiment = load_experiment(project_root / "config/experiments/demo.yaml")
    plan = resolve_plan(experiment["renderer"], torch.device("cpu"), experiment["model"])
    assert plan == InferencePlan(kernel="torch", compile="eager", fold_latent=True,
                                 precision="fp32")
    assert plan.line() == ("inference plan: kernel torch, compile eager, fold_latent true, "
                           "precision fp32, chunk_points auto, chunk_memory_bytes auto, "
                           "max_memory_mb auto")
    assert json.loads(json.dumps(plan.record())) == dataclasses.asdict(plan)


def test_the_plan_is_resolved_once_and_recorded_in_done_json(tmp_path, capsys, project_root):
    import yaml
    from helpers.demo import TINY_DEMO, merged

    from pixelnerf.data.demo import SynthSettings, synthesize
    from pixelnerf.eval.render import RenderJob, render_shard
    from pixelnerf.io import atomic_torch_save
    from pixelnerf.model import PixelNeRF

    base = yaml.safe_load((project_root / "config/experiments/demo.yaml").read_text())
    experiment = merged(base, TINY_DEMO)
    experiment["renderer"].update(n_coarse=4, n_fine=0, n_fine_depth=0)
    experiment["dataset"]["synth"] = {"categories": ["car"], "train_objects": 0,
                                      "val_objects": 0, "test_objects": 2, "views": 3,
                                      "image_size": 8}
    synthesize(SynthSettings.from_mapping(experiment["dataset"]["synth"]),
               tmp_path / "data" / "demo")
    checkpoint = tmp_path / "pixel_nerf_latest"
    atomic_torch_save(PixelNeRF.from_config(experiment["model"]).state_dict(), checkpoint)
    job = RenderJob.of_experiment(experiment, tmp_path / "data", checkpoint, tmp_path / "out")
    render_shard(job, "1v", 0, 1, torch.device("cpu"), progress=False)
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("inference plan:")]
    expected = resolve_plan(job.renderer, torch.device("cpu"), job.model)
    assert lines == [expected.line()]
    records = [json.loads(done.read_text()) for done in (tmp_path / "out").rglob("done.json")]
    assert len(records) == 2 and all(r["plan"] == expected.record() for r in records)


def imported_modules(path: Path) -> set[str]:
    """pixelnerf modules a file imports anywhere in it (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("pixelnerf")}


def module_graph(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the modules of ``folders`` it imports (a package's import of its
    ``__init__`` counts as an import of that package)."""
    modules = {}
    for folder in folders:
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return {name: {m for m in imported_modules(path) if m in modules and m != name}
            for name, path in modules.items()}


def test_no_import_cycle_from_the_model_to_the_renders():
    graph = module_graph(("model", "render", "eval", "video", "real"))
    assert "pixelnerf.model.mlp" in graph and "pixelnerf.eval.bench" in graph
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycle = trail[trail.index(target):] + [target] if target in trail else [target]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
