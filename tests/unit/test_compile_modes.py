"""``renderer.compile: max-autotune``: network calls padded to one size give the unpadded
results, the compiled MLPs compile once for passes and chunks of several lengths, and a
failed compilation makes the plan eager; the schema takes the three values."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from helpers.model import encoded_scene, look_at_origin, planned, tiny_config, tiny_model

import pixelnerf.render as R
from pixelnerf.config import EXPERIMENT_SCHEMA, load_experiment, validate
from pixelnerf.errors import PipelineError
from pixelnerf.model.plan import InferencePlan
from pixelnerf.render.compiling import compiled_graphs, padded_points
from pixelnerf.render.memory import PADDED_CHUNK_POINTS
from pixelnerf.render.renderer import Renderer

FP32_ATOL = 1e-4  # compiled against eager, as in test_fast_render
CHUNK = 200  # points a call: passes of 8 x 24 .. 8 x 40 rays split with a short last chunk
SIDE = 8


@pytest.fixture(scope="module")
def model():
    model = tiny_model(seed=5)
    images, poses, focal = encoded_scene(model, num_objects=1, num_views=1, size=32)
    with torch.no_grad():
        model.encode(images, poses, focal)
    return model


def view_rays(count: int) -> torch.Tensor:
    """The first ``count`` rays of one SIDE x SIDE view: (1, count, 8)."""
    pose = look_at_origin(0.7, 0.25, 2.0)[None]
    return R.image_rays(pose, SIDE, SIDE, SIDE * 1.2, 0.8, 3.2).reshape(1, -1, 8)[:, :count]


def renderer_config(settings: dict) -> dict:
    return {"n_coarse": 5, "n_fine": 3, "n_fine_depth": 1, "chunk_points": CHUNK,
            "precision": "fp32", "mlp_kernel": "torch", **settings}


def render(model, settings: dict, counts: tuple[int, ...],
           plan: InferencePlan | None = None) -> list[torch.Tensor]:
    """Fine colours of ray batches of ``counts`` rays, one renderer with the plan ``model``
    was built with (None: resolved here): [(1, count, 3)]."""
    config = renderer_config(settings)
    renderer = R.Renderer.from_config(config, plan or R.resolve_plan(config, torch.device("cpu")))
    with torch.no_grad():
        return [renderer(model, view_rays(count), generator=torch.Generator().manual_seed(1))
                ["fine"]["rgb"] for count in counts]


def test_padding_repeats_the_last_point():
    points = torch.arange(12.0).reshape(1, 4, 3)
    padded = padded_points(points, 6)
    assert padded.shape == (1, 6, 3)
    assert torch.equal(padded[:, :4], points) and torch.equal(padded[0, 4:], points[0, [3, 3]])
    assert padded_points(points, 4) is points
    assert padded_points(points[:, :0], 6).shape == (1, 0, 3)


@pytest.mark.parametrize("fold", [False, True])
def test_padded_calls_equal_unpadded_ones(model, fold):
    """Eager: the same chunks with and without padding, to float rounding of the same ops."""
    model.sources.latent_terms.clear()
    if fold:
        model.fold_latent_terms()
    generator = torch.Generator().manual_seed(2)
    points = torch.rand(1, 450, 3, generator=generator) - 0.5
    dirs = torch.nn.functional.normalize(torch.randn(1, 450, 3, generator=generator), dim=-1)
    calls = {False: [], True: []}
    for padded, sizes in calls.items():
        def network(xyz, sizes=sizes, **kwargs):
            sizes.append(xyz.shape[1])
            return model(xyz, **kwargs)

        with torch.no_grad():
            out = Renderer._evaluate_chunks(network, points, dirs, False, CHUNK, "fp32", padded)
        assert [o.shape[1] for o in out] == [200, 200, 50]
        calls[padded] = (sizes, torch.cat(out, dim=1))
    assert calls[False][0] == [200, 200, 50] and calls[True][0] == [200, 200, 200]
    torch.testing.assert_close(calls[True][1], calls[False][1])
    model.sources.latent_terms.clear()


def test_padded_calls_cap_only_a_chunk_sized_from_the_device():
    model = SimpleNamespace(sources=SimpleNamespace(num_views=1))
    sized = Renderer.from_config({}, InferencePlan(compile="max-autotune",
                                                   chunk_memory_bytes=1 << 40))
    assert sized.points_per_call(model) == 1 << 21
    assert sized.points_per_call(model, padded=True) == PADDED_CHUNK_POINTS < 1 << 21
    given = Renderer.from_config({}, InferencePlan(compile="max-autotune", chunk_points=1 << 20))
    assert given.points_per_call(model, padded=True) == 1 << 20


def test_max_autotune_compiles_each_mlp_once_and_equals_eager(model):
    # Ray batches of 24, 40 and 13 rays: coarse passes of 120, 200 and 65 points and fine
    # passes of 192, 320 and 104, all different lengths, every call padded to CHUNK.
    counts = (24, 40, 13)
    plain = render(model, {"compile": False, "fold_latent": False}, counts)
    settings = {"compile": "max-autotune", "fold_latent": False}
    plan = R.resolve_plan(renderer_config(settings), torch.device("cpu"))
    assert plan.compile == "max-autotune" and plan.pads_calls
    compiled_model = planned(model, tiny_config(), plan)
    torch._dynamo.reset()  # graphs compiled by earlier tests would serve these calls
    before = compiled_graphs()
    compiled = render(compiled_model, settings, counts, plan)
    # One graph for six passes: dynamic=False compiles anew for every new shape, and the
    # coarse and the fine MLP, of one architecture, share the graph of their shape.
    assert compiled_graphs() - before == 1
    for got, want in zip(compiled, plain, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=FP32_ATOL)
    assert plan.compile_options == {"mode": "max-autotune-no-cudagraphs", "dynamic": False}
    assert getattr(compiled_model.mlp_fine, "_compiled_call_impl", None) is not None
    assert getattr(model.mlp_coarse, "_compiled_call_impl", None) is None


def test_a_failed_compilation_makes_an_eager_plan(model, monkeypatch, capfd):
    import torch._inductor.compile_fx as inductor

    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(inductor, "compile_fx", no_compiler)
    torch._dynamo.reset()  # else a graph an earlier test compiled would serve these calls
    plain = render(model, {"compile": False, "fold_latent": False}, (24,))
    settings = {"compile": "max-autotune", "fold_latent": False}
    plan = R.resolve_plan(renderer_config(settings), torch.device("cpu"))
    warnings = [line for line in capfd.readouterr().err.splitlines() if "torch.compile" in line]
    assert len(warnings) == 1 and "no C++ compiler found" in warnings[0]
    assert plan.compile == "eager" and not plan.pads_calls
    eager = planned(model, tiny_config(), plan)
    assert getattr(eager.mlp_coarse, "_compiled_call_impl", None) is None
    renderer = R.Renderer.from_config(renderer_config(settings), plan)
    with torch.no_grad():
        rendered = renderer(eager, view_rays(24), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(rendered["fine"]["rgb"], plain[0], rtol=0, atol=FP32_ATOL)


def test_the_schema_takes_false_true_and_max_autotune(project_root):
    experiment = load_experiment(project_root / "config/experiments/demo.yaml")
    for value in (False, True, "max-autotune"):
        experiment["renderer"]["compile"] = value
        validate(experiment, EXPERIMENT_SCHEMA, "demo.yaml")
    experiment["renderer"]["compile"] = "autotune"
    with pytest.raises(PipelineError, match="compile"):
        validate(experiment, EXPERIMENT_SCHEMA, "demo.yaml")
