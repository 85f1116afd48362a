"""`train.num_workers: auto`: no DataLoader workers on a CPU, the process's share of the
node's CPUs on CUDA; a number is used as given; the schema takes both."""

from __future__ import annotations

import pytest
import torch

from pixelnerf.config import PROJECT_ROOT, load_yaml, validate
from pixelnerf.errors import PipelineError
from pixelnerf.train.config import MAX_AUTO_WORKERS, TrainConfig, resolve_workers

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


def test_auto_is_no_workers_on_a_cpu() -> None:
    assert resolve_workers(TrainConfig(), CPU, cpus=32) == 0


@pytest.mark.parametrize(("cpus", "ranks", "workers"),
                         [(16, 1, MAX_AUTO_WORKERS), (16, 2, 7), (16, 8, 1), (2, 1, 1),
                          (4, 8, 1)])
def test_auto_on_cuda_is_the_process_share_of_the_cpus(cpus: int, ranks: int,
                                                       workers: int) -> None:
    assert resolve_workers(TrainConfig(), CUDA, ranks, cpus=cpus) == workers


def test_a_number_is_used_as_given() -> None:
    config = TrainConfig.from_mapping({"num_workers": 3})
    assert resolve_workers(config, CPU) == 3 and resolve_workers(config, CUDA, 4, cpus=2) == 3


@pytest.mark.parametrize("value", ["auto", 0, 6])
def test_the_schema_takes_auto_and_counts(value) -> None:
    experiment = load_yaml(PROJECT_ROOT / "config/experiments/demo.yaml")
    experiment["train"]["num_workers"] = value
    validate(experiment, "experiment.schema.yaml", "demo.yaml")


@pytest.mark.parametrize("value", ["many", -1, 1.5])
def test_the_schema_refuses_other_values_in_one_line(value) -> None:
    experiment = load_yaml(PROJECT_ROOT / "config/experiments/demo.yaml")
    experiment["train"]["num_workers"] = value
    with pytest.raises(PipelineError, match="num_workers") as error:
        validate(experiment, "experiment.schema.yaml", "demo.yaml")
    assert "\n" not in str(error.value)
