"""The packaged schemas: the one check of every config, whatever the working folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pixelnerf.config import (
    CONFIG_SCHEMA,
    EXPERIMENT_SCHEMA,
    load_experiment,
    load_schema,
    validate,
)
from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import DEFAULT_RAY_BATCH, EvalConfig


def test_schemas_ship_inside_the_package() -> None:
    import pixelnerf

    package = Path(pixelnerf.__file__).parent
    for name in (CONFIG_SCHEMA, EXPERIMENT_SCHEMA):
        path = package / "schemas" / name
        assert load_schema(name) == yaml.safe_load(path.read_text(encoding="utf-8"))


def test_each_schema_is_checked_by_the_validator_of_its_draft() -> None:
    from jsonschema import Draft7Validator, Draft202012Validator
    from jsonschema.validators import validator_for

    assert validator_for(load_schema(CONFIG_SCHEMA)) is Draft202012Validator
    assert validator_for(load_schema(EXPERIMENT_SCHEMA)) is Draft7Validator


def test_validation_does_not_depend_on_the_working_folder(
    tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment = yaml.safe_load((project_root / "config/experiments/demo.yaml").read_text())
    experiment["eval"]["ray_btach"] = 10
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(experiment))
    monkeypatch.chdir(tmp_path)  # no workflow/ folder here
    with pytest.raises(PipelineError, match="key eval: .*'ray_btach' was unexpected"):
        load_experiment(path)


def test_workflow_config_is_checked_with_its_draft(project_root: Path) -> None:
    config = yaml.safe_load((project_root / "config/config.yaml").read_text())
    validate(config, CONFIG_SCHEMA, "config.yaml")
    with pytest.raises(PipelineError, match="key shards"):
        validate({**config, "shards": 0}, CONFIG_SCHEMA, "config.yaml")


def test_eval_section_of_every_experiment(project_root: Path) -> None:
    for path in sorted((project_root / "config/experiments").glob("*.yaml")):
        raw = load_experiment(path)["eval"]
        config = EvalConfig.of_experiment(load_experiment(path))
        assert config.split == raw["split"] and config.setting_names == list(raw["settings"])
        assert config.ray_batch == raw.get("ray_batch", DEFAULT_RAY_BATCH)
        assert config.approx is not None and config.approx_setting in config.settings
