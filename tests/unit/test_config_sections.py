"""The typed config sections: every shipped config reads as before, and the schemas and
config/README.md agree with the dataclasses that hold each default and description."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from pixelnerf.config import (
    CONFIG_SCHEMA,
    EXPERIMENT_SCHEMA,
    REQUIRED,
    build,
    load_experiment,
    load_schema,
    load_yaml,
    plain,
    setting,
)
from pixelnerf.config.global_settings import GlobalConfig, load_global_config
from pixelnerf.data.config import DatasetConfig
from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import EvalConfig
from pixelnerf.real.settings import RealSettings
from pixelnerf.report.config_tables import GLOBAL, SECTIONS, render_readme, rows, schema_mismatches
from pixelnerf.train.config import TrainConfig
from pixelnerf.video.settings import VideoSettings

# What the code before the typed sections read from every shipped config, recorded from it:
# the old dataclasses' defaults, then per experiment the values that differ from them.
OLD_TRAIN_DEFAULTS = {'weights': 'train',
 'published_source': None,
 'published_name': None,
 'steps': 400000,
 'batch_objects': 4,
 'rays_per_object': 128,
 'nviews': [1],
 'lr': 0.0001,
 'lr_schedule': 'constant',
 'lr_final': 0.0,
 'lr_warmup': 0,
 'lr_gamma': 1.0,
 'loss': 'mse',
 'lambda_coarse': 1.0,
 'lambda_fine': 1.0,
 'freeze_encoder': False,
 'accumulate': 1,
 'init': None,
 'no_bbox_step': 100000,
 'checkpoint_every': 50,
 'val_every': 50,
 'vis_every': 100,
 'seed': 0,
 'color_jitter': False,
 'color_jitter_range': 0.1,
 'bf16': 'auto',
 'tf32': 'auto',
 'fold_latent': 'auto',
 'num_workers': 'auto',
 'cache_mb': 4096,
 'val_objects': 4,
 'max_views': None,
 'gpus': 1}

OLD_EVAL_DEFAULTS = {'target_view_list': None,
 'target_exclude': [],
 'reuse_first_object_cameras': False,
 'ray_batch': None,
 'baselines': False,
 'report_objects': 3,
 'report_views': 2,
 'lpips_batch_size': 32,
 'table_rows': None,
 'approx': None,
 'min_coarse_samples': 64,
 'outputs': {'depth': False, 'coarse': False, 'include_src': False, 'compare': False},
 'scale': 1.0}

OLD_SYNTH_DEFAULTS = {'seed': 0,
 'categories': ['chair', 'table', 'lamp', 'car'],
 'train_objects': 16,
 'val_objects': 2,
 'test_objects': 4,
 'views': 24,
 'image_size': 64,
 'focal': 1.75,
 'radius': 2.732,
 'object_scale': 1.6,
 'elevations': [30.0],
 'azimuth_offset': 0.0,
 'light_direction': [0.4, 0.25, 1.0],
 'ambient': 0.35,
 'diffuse': 0.65}

# No shipped experiment has a video or real section: each reads as these defaults.
OLD_VIDEO_DEFAULTS = {'path': 'auto', 'frames': 40, 'fps': 30.0, 'quality': 8.0,
                      'elevation': -10.0, 'radius': None, 'spline_distance': 2.0,
                      'sources': None, 'split': None}

OLD_REAL_DEFAULTS = {'size': 128, 'minor_scale': 4.37, 'major_scale': 0.8, 'focal': 131.25,
                     'radius': 1.3, 'z_near': 0.8, 'z_far': 1.8, 'elevation': 0.0, 'frames': 24,
                     'fps': 15.0, 'quality': 8.0, 'stills': 4, 'score_threshold': 0.5,
                     'mask_threshold': 0.5}

OLD_EXPERIMENTS = {'demo': {'dataset': {'dir': 'demo',
                      'format': 'dvr',
                      'image_size': None,
                      'list_prefix': 'softras_',
                      'source': 'synth-demo'},
          'dataset.synth': {'elevations': [-20.0, 10.0, 40.0, 70.0],
                            'object_scale': 2.4,
                            'test_objects': 2},
          'train': {'bf16': False,
                    'checkpoint_every': 500,
                    'lr': 0.002,
                    'lr_final': 1e-05,
                    'lr_schedule': 'cosine',
                    'lr_warmup': 200,
                    'no_bbox_step': 0,
                    'steps': 3000,
                    'tf32': False,
                    'val_every': 200,
                    'vis_every': 400},
          'eval': {'approx': {'objects': 4,
                              'protocol': 'sampled',
                              'seed': 1234,
                              'setting': '1v',
                              'split': None,
                              'views': 2},
                   'baselines': True,
                   'ray_batch': 16384,
                   'seed': 0,
                   'settings': {'1v': {'random': {'count': 1, 'seed': 0}}},
                   'shards': 2,
                   'split': 'test'},
          'rays_per_call': 16384},
 'dtu': {'dataset': {'dir': 'rs_dtu_4',
                     'format': 'dvr_dtu',
                     'image_size': None,
                     'list_prefix': 'new_',
                     'source': 'dtu'},
         'train': {'color_jitter': True,
                   'max_views': 49,
                   'nviews': [3],
                   'published_name': 'dtu',
                   'published_source': 'pretrained',
                   'vis_every': 200,
                   'weights': 'published'},
         'eval': {'approx': {'objects': 15,
                             'protocol': 'sampled',
                             'seed': 1234,
                             'setting': '3v',
                             'split': None,
                             'views': 1},
                  'ray_batch': 50000,
                  'seed': 0,
                  'settings': {'1v': {'views': [25]},
                               '3v': {'views': [22, 25, 28]},
                               '6v': {'views': [22, 25, 28, 40, 44, 48]},
                               '9v': {'views': [22, 25, 28, 40, 44, 48, 0, 8, 13]}},
                  'shards': 4,
                  'split': 'val',
                  'target_exclude': [3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 36, 37, 38, 39]},
         'rays_per_call': 50000},
 'multi_chair': {'dataset': {'dir': 'multi_chair',
                             'format': 'multi_obj',
                             'image_size': None,
                             'list_prefix': None,
                             'source': 'multi_chair'},
                 'train': {'nviews': [2],
                           'published_name': 'multi_obj',
                           'published_source': 'pretrained',
                           'weights': 'published'},
                 'eval': {'approx': {'objects': 50,
                                     'protocol': 'sampled',
                                     'seed': 1234,
                                     'setting': '2v',
                                     'split': None,
                                     'views': 1},
                          'ray_batch': 50000,
                          'report_objects': 4,
                          'seed': 0,
                          'settings': {'2v': {'random': {'count': 2, 'seed': 2021}}},
                          'shards': 4,
                          'split': 'test',
                          'target_view_list': 'config/viewlists/2obj_eval_views.txt'},
                 'rays_per_call': 50000},
 'sn64': {'dataset': {'dir': 'NMR_Dataset',
                      'format': 'dvr',
                      'image_size': None,
                      'list_prefix': 'softras_',
                      'source': 'nmr'},
          'train': {'published_name': 'sn64',
                    'published_source': 'pretrained',
                    'weights': 'published'},
          'eval': {'approx': {'objects': 200,
                              'protocol': 'sampled',
                              'seed': 1234,
                              'setting': '1v',
                              'split': None,
                              'views': 1},
                   'ray_batch': 50000,
                   'report_objects': 4,
                   'seed': 0,
                   'settings': {'1v': {'view_list': 'config/viewlists/src_dvr.txt'}},
                   'shards': 8,
                   'split': 'test'},
          'rays_per_call': 50000},
 'sn64_unseen': {'dataset': {'dir': 'NMR_Dataset',
                             'format': 'dvr_gen',
                             'image_size': None,
                             'list_prefix': 'gen_',
                             'source': 'nmr'},
                 'dataset.split': {'list_prefix': 'gen_',
                                   'seed': 0,
                                   'seen': ['02691156', '02958343', '03001627'],
                                   'source_list': 'config/viewlists/src_gen.txt',
                                   'source_prefix': 'softras_',
                                   'test_fraction': 0.25,
                                   'unseen': ['02828884', '02933112', '03211117', '03636649',
                                              '03691459', '04090263', '04256520', '04379243',
                                              '04401088', '04530566'],
                                   'val_fraction': 0.1},
                 'train': {'published_name': 'sn64_unseen',
                           'published_source': 'pretrained',
                           'weights': 'published'},
                 'eval': {'approx': {'objects': 200,
                                     'protocol': 'sampled',
                                     'seed': 1234,
                                     'setting': '1v',
                                     'split': None,
                                     'views': 1},
                          'ray_batch': 50000,
                          'report_objects': 4,
                          'seed': 0,
                          'settings': {'1v': {'view_list': 'config/viewlists/src_gen.txt'}},
                          'shards': 8,
                          'split': 'test'},
                 'rays_per_call': 50000},
 'srn_car': {'dataset': {'dir': 'cars',
                         'format': 'srn',
                         'image_size': None,
                         'list_prefix': None,
                         'source': 'srn_cars'},
             'train': {'nviews': [1, 2],
                       'published_name': 'srn_car',
                       'published_source': 'pretrained',
                       'weights': 'published'},
             'eval': {'approx': {'objects': 100,
                                 'protocol': 'sampled',
                                 'seed': 1234,
                                 'setting': '1v',
                                 'split': None,
                                 'views': 1},
                      'ray_batch': 50000,
                      'report_objects': 4,
                      'seed': 0,
                      'settings': {'1v': {'views': [64]}, '2v': {'views': [64, 104]}},
                      'shards': 16,
                      'split': 'test'},
             'rays_per_call': 50000},
 'srn_chair': {'dataset': {'dir': 'chairs',
                           'format': 'srn',
                           'image_size': None,
                           'list_prefix': None,
                           'source': 'srn_chairs'},
               'train': {'nviews': [1, 2],
                         'published_name': 'srn_chair',
                         'published_source': 'pretrained',
                         'weights': 'published'},
               'eval': {'approx': {'objects': 100,
                                   'protocol': 'sampled',
                                   'seed': 1234,
                                   'setting': '1v',
                                   'split': None,
                                   'views': 1},
                        'ray_batch': 50000,
                        'report_objects': 4,
                        'seed': 0,
                        'settings': {'1v': {'views': [64]}, '2v': {'views': [64, 104]}},
                        'shards': 16,
                        'split': 'test'},
               'rays_per_call': 50000}}

OLD_GLOBAL = {'checkpoints_root': 'checkpoints',
 'data_root': 'data',
 'device': 'auto',
 'experiment': 'demo',
 'experiments_dir': 'config/experiments',
 'in_place': [],
 'lpips_weights': None,
 'real_input': 'input',
 'resources': {'gpu_stages': ['train', 'render', 'metrics'],
               'mem_mb': {'light': 2000, 'metrics': 8000, 'render': 16000, 'train': 16000},
               'runtime': {'download': 240,
                           'light': 30,
                           'metrics': 120,
                           'render': 720,
                           'train': 1440},
               'threads': {'light': 1, 'metrics': 4, 'render': 4, 'train': 8}},
 'results_root': 'results',
 'shards': None,
 'steps': None,
 'weights': None}


def _old_eval_shape(config: EvalConfig) -> dict[str, Any]:
    """The new ``eval`` value in the old one's shape (targets were two flat fields, the
    approximate protocol's split a field)."""
    old = plain(config)
    targets = old.pop("targets")
    old["target_view_list"], old["target_exclude"] = targets["view_list"], targets["exclude"]
    if config.approx is not None:
        old["approx"]["split"] = config.approx.split
    return old


@pytest.mark.parametrize("name", sorted(OLD_EXPERIMENTS))
def test_every_experiment_reads_as_before(project_root: Path, name: str) -> None:
    experiment = load_experiment(project_root / "config" / "experiments" / f"{name}.yaml")
    old = OLD_EXPERIMENTS[name]
    dataset = DatasetConfig.of_experiment(experiment)
    assert {key: plain(getattr(dataset, key)) for key in old["dataset"]} == old["dataset"]
    if "dataset.synth" in old:
        assert plain(dataset.synth) == {**OLD_SYNTH_DEFAULTS, **old["dataset.synth"]}
    else:
        assert dataset.synth is None
    if "dataset.split" in old:
        assert plain(dataset.split_settings()) == old["dataset.split"]
    else:
        assert dataset.split is None
    # The old default None of published_source meant `pretrained` to every reader.
    expected_train = {**OLD_TRAIN_DEFAULTS, "published_source": "pretrained", **old["train"]}
    # train.bf16/tf32 `auto` meant off before `auto` got the one meaning every precision
    # setting has (bf16 where native): the experiments now say `false`, the same training.
    for key in ("bf16", "tf32"):
        expected_train[key] = False if expected_train[key] == "auto" else expected_train[key]
    assert plain(TrainConfig.of_experiment(experiment)) == expected_train
    # An unset ray_batch was None and meant 50000; every shipped experiment sets it.
    assert {**OLD_EVAL_DEFAULTS, **old["eval"]}["ray_batch"] == old["rays_per_call"]
    evaluation = EvalConfig.of_experiment(experiment)
    assert _old_eval_shape(evaluation) == {**OLD_EVAL_DEFAULTS, **old["eval"]}
    assert evaluation.ray_batch == old["rays_per_call"]
    assert "video" not in experiment and "real" not in experiment
    assert plain(VideoSettings.of_experiment(experiment)) == OLD_VIDEO_DEFAULTS
    assert plain(RealSettings.of_experiment(experiment)) == OLD_REAL_DEFAULTS


def test_the_global_config_reads_as_before(project_root: Path) -> None:
    raw = load_yaml(project_root / "config" / "config.yaml")
    assert plain(load_global_config(raw)) == OLD_GLOBAL


def test_the_required_global_keys_at_their_defaults_read_as_the_defaults() -> None:
    required = {"experiment": "demo", "data_root": "data", "results_root": "results",
                "checkpoints_root": "checkpoints", "device": "auto"}
    assert load_global_config(required) == GlobalConfig()


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_schema_has_the_dataclass_keys_and_defaults(name: str) -> None:
    schema = load_schema(CONFIG_SCHEMA if name == GLOBAL else EXPERIMENT_SCHEMA)
    node = schema if name == GLOBAL else schema["properties"][name]
    assert schema_mismatches(SECTIONS[name], node, name, schema.get("definitions")) == []


def test_schema_mismatches_name_the_key() -> None:
    node = load_schema(EXPERIMENT_SCHEMA)["properties"]["eval"]
    node = {**node, "properties": {**node["properties"], "ray_batch": {"default": 1}}}
    del node["properties"]["scale"]
    assert schema_mismatches(EvalConfig, node, "eval") == [
        "eval.scale: only in the dataclass",
        "eval.ray_batch: schema default 1, dataclass 50000"]


def test_experiment_schema_documents_nothing_twice() -> None:
    """Descriptions and defaults of the sections live in the dataclasses only."""
    def keys(node: Any) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for v in node.values() for k in keys(v)}
        if isinstance(node, list):
            return {k for v in node for k in keys(v)}
        return set()

    schema = load_schema(EXPERIMENT_SCHEMA)
    for name in set(SECTIONS) - {GLOBAL}:
        assert not keys(schema["properties"][name]) & {"description", "default"}, name
    # the sub-sections given by reference (model.mlp_coarse, model.encoder, ...)
    for name, node in schema["definitions"].items():
        assert not keys(node) & {"description", "default"}, name
    assert not {"description", "default"} & keys(load_schema(CONFIG_SCHEMA)["properties"])


def test_config_readme_is_generated_from_the_dataclasses(project_root: Path) -> None:
    text = (project_root / "config" / "README.md").read_text(encoding="utf-8")
    assert render_readme(text) == text, "run `pixelnerf config-docs`"
    for name, cls in SECTIONS.items():
        for key, _, doc in rows(cls):
            assert doc and "\n" not in doc, f"{name}.{key}"
            assert f"| `{key}` |" in text


def test_readme_generation_rewrites_between_markers_and_needs_them() -> None:
    text = ("intro\n<!-- config-docs:begin train -->\nstale\n"
            "<!-- config-docs:end train -->\noutro\n")
    out = render_readme(text, {"train": TrainConfig})
    assert out.startswith("intro\n<!-- config-docs:begin train -->\n| key | default |")
    assert "| `lr` | `0.0001` | Adam learning rate" in out and "stale" not in out
    assert out.endswith("<!-- config-docs:end train -->\noutro\n")
    with pytest.raises(PipelineError, match="config-docs:begin eval"):
        render_readme(text, {"eval": EvalConfig})


@dataclasses.dataclass(frozen=True)
class _Inner:
    factor: float = setting(1.0, "a float")


@dataclasses.dataclass(frozen=True)
class _Section:
    name: str = setting(REQUIRED, "required")
    sizes: tuple[int, ...] = setting((1,), "a list")
    inner: _Inner | None = setting(None, "a sub-section")
    derived: int = dataclasses.field(default=7)  # not a config key

    def check(self, origin: str) -> None:
        if self.name == "bad":
            raise PipelineError(f"{origin}.name must not be bad")


def test_build_converts_to_the_field_types() -> None:
    built = build(_Section, {"name": "a", "sizes": [2, 3], "inner": {"factor": 2}}, "s")
    assert built == _Section("a", (2, 3), _Inner(2.0))
    assert isinstance(built.inner.factor, float) and built.derived == 7
    assert build(_Section, {"name": "a"}, "s").inner is None


@pytest.mark.parametrize(("data", "message"), [
    ({}, "s: key name is missing"),
    ({"name": "a", "derived": 1}, "s: unknown key derived"),
    ({"name": "a", "inner": {"factr": 1}}, "s.inner: unknown key factr"),
    ({"name": "bad"}, "s.name must not be bad"),
])
def test_build_errors_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        build(_Section, data, "s")


def test_train_cross_field_checks_stay() -> None:
    with pytest.raises(PipelineError, match="train.lr_final must be between 0 and lr"):
        TrainConfig.from_mapping({"lr": 1e-4, "lr_final": 1e-3})


def test_config_docs_command_checks_and_rewrites(project_root: Path, tmp_path: Path) -> None:
    from pixelnerf.cli import main

    readme = tmp_path / "README.md"
    current = (project_root / "config" / "README.md").read_text(encoding="utf-8")
    readme.write_text(current.replace("| `lr` | `0.0001` |", "| `lr` | `0.1` |"))
    assert main(["config-docs", "--check", "--readme", str(readme)]) == 1
    assert main(["config-docs", "--readme", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == current
    assert main(["config-docs", "--check", "--readme", str(readme)]) == 0
