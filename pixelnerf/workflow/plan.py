"""What a workflow run makes and from what, decided from the global config (config/config.yaml
with ``--config``, read as :class:`~pixelnerf.config.global_settings.GlobalConfig`) and the
experiment files (their ``dataset``, ``train`` and ``eval`` sections read as their dataclasses).

The Snakefile's input functions hand a :class:`Plan` an experiment's name; every decision
(which experiments exist, their paths, targets, shards, config digests, stage resources) sits
here, so that it is tested without Snakemake. Bad input raises
:class:`~pixelnerf.errors.PipelineError`, one line naming the key, file or value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelnerf.config import load_experiment, plain
from pixelnerf.config.global_settings import GlobalConfig, load_global_config
from pixelnerf.data.config import DatasetConfig
from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import EvalConfig
from pixelnerf.train.config import TrainConfig

SOURCES_FILE = "config/sources.yaml"
# Keys whose values become paths in shell commands. The rules quote every value, so spaces,
# quotes, `;` or `$` are ordinary characters; a newline or NUL would still split a command
# line or a path list and is refused.
PATH_KEYS = ("data_root", "results_root", "checkpoints_root", "experiments_dir")
FORBIDDEN_IN_PATHS = (("\n", "a newline"), ("\r", "a carriage return"), ("\0", "a NUL"))
SYNTH_SOURCE = "synth-demo"
# The one dataset format whose unseen-category split lists the workflow writes itself.
SPLIT_FORMAT = "dvr_gen"
# `lpips_weights: download`: the download stage fetches the LPIPS trunks.
LPIPS_DOWNLOAD = "download"
# The LPIPS networks of the sensitivity step's variants (the metrics step scores with VGG).
LPIPS_NETS = ("vgg", "alex")

# The experiment file is a param, not an input: a stage reruns when the config sections it
# reads change (Snakemake's params trigger), not on every edit of the file.
STAGE_SECTIONS = {
    "synth": ("dataset",),
    "split": ("dataset",),
    "train": ("dataset", "model", "renderer", "train"),
    "render": ("dataset", "model", "renderer", "eval"),
    "metrics": ("dataset", "renderer", "eval"),
    "table": ("eval",),
    "figure": ("dataset", "eval"),
    "approx": ("dataset", "model", "renderer", "eval"),
    "video": ("dataset", "model", "renderer", "eval", "video"),
    "real": ("model", "renderer", "eval", "real"),
}
# eval keys that change neither renders nor their metrics
PRESENTATION_KEYS = frozenset({"shards", "report_objects", "report_views", "approx", "table_rows"})
# train keys that leave the training unchanged (the same global batch on any GPU count)
TRAIN_RESOURCE_KEYS = frozenset({"gpus"})
CONFIG_ORIGIN = "workflow config (config/config.yaml + --config)"


def read_global_config(config: Mapping[str, Any]) -> GlobalConfig:
    """The global config mapping as Snakemake holds it, checked against its schema (the
    first bad key, in one line) and typed, every absent key at its default."""
    return load_global_config(config, CONFIG_ORIGIN)


def check_path_keys(config: GlobalConfig) -> None:
    """No folder key holds a character that would split a shell command or a path list."""
    for key in PATH_KEYS:
        value = getattr(config, key)
        for char, name in FORBIDDEN_IN_PATHS:
            if char in value:
                raise PipelineError(
                    f"config key {key}: {value!r} contains {name}; choose another folder name"
                )


def digest(parts: Mapping[str, Any]) -> str:
    """A short, order-independent digest of config values."""
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Experiment:
    """One experiment of the run: its file's mapping (with the run's train overrides), which
    the config digests hash as given, and the sections the plan reads, typed."""

    raw: Mapping[str, Any]
    dataset: DatasetConfig
    train: TrainConfig
    eval: EvalConfig

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Experiment:
        return cls(raw, DatasetConfig.of_experiment(raw), TrainConfig.of_experiment(raw),
                   EvalConfig.of_experiment(raw))


class Plan:
    """One run's decisions. Checked on construction: the folder keys, ``data_root``,
    ``in_place``, ``experiments_dir``, every experiment file and ``experiment``; so a
    misspelt key anywhere stops the run before any job."""

    def __init__(self, config: GlobalConfig, sources_file: str = SOURCES_FILE) -> None:
        check_path_keys(config)
        self.config = config
        self.sources_file = sources_file
        self.data = config.data_root
        self.results = config.results_root
        self.checkpoints = config.checkpoints_root
        self.logs = f"{self.results}/logs"
        self.bench = f"{self.results}/benchmarks"
        self.experiments_dir = Path(config.experiments_dir)
        self.in_place = frozenset(config.in_place)
        self._experiments: dict[str, Experiment] = {}
        self._check_folders()
        for name in self.known_experiments():
            self.experiment(name)
        if config.experiment not in self.known_experiments():
            raise PipelineError(
                f"config key experiment: {self.experiment_file(config.experiment)} does not "
                f"exist (known: {', '.join(self.known_experiments())})"
            )

    def _check_folders(self) -> None:
        if not Path(self.data).is_dir() and self.data != GlobalConfig.data_root:
            # The default folder is created by the download and synth steps; a configured one
            # that does not exist is a typo, and downloading a dataset into it would be wrong.
            raise PipelineError(f"config key data_root: folder {self.data} does not exist")
        from pixelnerf.download.sources import load_sources

        known = set(load_sources(self.sources_file).sources)
        for source in sorted(self.in_place - known):
            raise PipelineError(
                f"config key in_place: {source} is not a source of {self.sources_file} "
                f"(known: {', '.join(sorted(known))})"
            )
        if not self.experiments_dir.is_dir():
            raise PipelineError(
                f"config key experiments_dir: folder {self.experiments_dir} does not exist"
            )

    # ------------------------------------------------------------------------- experiments

    def experiment_file(self, name: str) -> str:
        return str(self.experiments_dir / f"{name}.yaml")

    def config_file(self, exp: str) -> str:
        """The file of experiment ``exp``, checked: an unknown one raises, naming the file."""
        self.experiment(exp)
        return self.experiment_file(exp)

    def known_experiments(self) -> list[str]:
        return sorted(p.stem for p in self.experiments_dir.glob("*.yaml"))

    def experiment(self, name: str) -> Experiment:
        """The validated experiment config ``<experiments_dir>/<name>.yaml``, with the run's
        ``--config weights=... steps=...`` applied."""
        if name not in self._experiments:
            self._experiments[name] = Experiment.of(self._load(name))
        return self._experiments[name]

    def _load(self, name: str) -> dict[str, Any]:
        path = Path(self.experiment_file(name))
        if not path.is_file():
            raise PipelineError(
                f"unknown experiment {name!r}: {path} does not exist "
                f"(known: {', '.join(self.known_experiments())})"
            )
        cfg = load_experiment(path)
        if cfg["name"] != name:
            raise PipelineError(
                f"{path}: key name: {cfg['name']!r} differs from the file name {name!r}"
            )
        overrides = self.config.train_overrides()
        if overrides:
            cfg = {**cfg, "train": {**cfg["train"], **overrides}}
        return cfg

    def config_digest(self, stage: str, exp: str) -> str:
        """Digest of the config sections that ``stage`` (a key of STAGE_SECTIONS) reads."""
        # The sections as the file gives them, not their typed values: a default added or
        # changed in the code must not change the digest of (and rerun) finished results.
        cfg = self.experiment(exp).raw
        parts = {name: cfg.get(name) for name in STAGE_SECTIONS[stage]}
        if stage in ("render", "metrics"):
            parts["eval"] = {k: v for k, v in cfg["eval"].items() if k not in PRESENTATION_KEYS}
        if stage == "train":
            parts["train"] = {
                k: v for k, v in cfg["train"].items() if k not in TRAIN_RESOURCE_KEYS
            }
        return digest(parts)

    def config_json(self) -> str:
        """The global config of this run as JSON (for the provenance record)."""
        return json.dumps(plain(self.config), sort_keys=True)

    # ------------------------------------------------------------------------- resources

    def stage_threads(self, stage: str) -> int:
        return int(getattr(self.config.resources.threads, stage))

    def stage_resources(self, stage: str, runtime: str | None = None) -> dict[str, Any]:
        """The resources of a job of ``stage`` (a key of the config's `resources`), as
        Snakemake takes them: a GPU where the stage is one of `gpu_stages`, its memory, its
        minutes (those of ``runtime`` when given) times the attempt, so that a retried job
        gets more time, and the torch device. The device is a resource, not a param: a
        param change reruns a job, and results made on one device stay valid on another."""
        resources = self.config.resources
        minutes = getattr(resources.runtime, runtime or stage)
        return {
            "gpu": 1 if stage in resources.gpu_stages else 0,
            "mem_mb": getattr(resources.mem_mb, stage),
            "runtime": lambda wildcards, attempt: minutes * attempt,
            "device": self.config.device,
        }

    def train_gpus(self, exp: str) -> int:
        """GPUs (data-parallel processes) of an experiment's training job: train.gpus."""
        return self.experiment(exp).train.gpus

    def train_resources(self) -> dict[str, Any]:
        """``stage_resources("train")`` with ``train.gpus``: the GPUs asked for and the
        processes of the job (``pixelnerf train --gpus``); resources, so that another count
        reruns nothing. (The job's input functions have loaded the experiment before.)"""
        resources = self.stage_resources("train")
        on_gpu = resources["gpu"]
        return {
            **resources,
            "gpu": lambda wildcards: self.train_gpus(wildcards.exp) * on_gpu,
            "processes": lambda wildcards: self.train_gpus(wildcards.exp),
        }

    # ------------------------------------------------------------------------- LPIPS

    def fetches_lpips(self, exp: str) -> bool:
        """Whether the download stage fetches the LPIPS trunks before ``exp`` is scored:
        `lpips_weights: download`, or (null) where ``exp``'s dataset is itself downloaded,
        the network being needed there anyway. The demo's synthesized data and data used in
        place never need it: the trunk is then found locally (docs/lpips.md)."""
        weights = self.config.lpips_weights
        if weights == LPIPS_DOWNLOAD:
            return True
        if weights is not None:
            return False
        source = self.dataset(exp).source
        return source != SYNTH_SOURCE and source not in self.in_place

    def lpips_trunks(self, exp: str, nets: tuple[str, ...] = ("vgg",)) -> list[str]:
        """What a job scoring ``exp`` with the LPIPS networks ``nets`` waits for: the trunks'
        downloads where :meth:`fetches_lpips` says so (a trunk source used `in_place` is
        found where it lies), else nothing."""
        from pixelnerf.eval.lpips_trunk import trunk_spec

        if not self.fetches_lpips(exp):
            return []
        sources = [trunk_spec(net).source for net in nets]
        return [self.download_marker(s) for s in sources if s not in self.in_place]

    def lpips_options(self) -> list[str]:
        """The LPIPS arguments of the metrics and sensitivity commands, a list so that each
        is quoted on its own: where the downloads and the converted trunk lie, and the
        configured file."""
        options = ["--checkpoints-root", self.checkpoints, "--sources", self.sources_file]
        weights = self.config.lpips_weights
        if weights is not None and weights != LPIPS_DOWNLOAD:
            options += ["--lpips-weights", weights]
        return options

    # ------------------------------------------------------------------------- data

    def dataset(self, exp: str) -> DatasetConfig:
        return self.experiment(exp).dataset

    def dataset_root(self, exp: str) -> str:
        return f"{self.data}/{self.dataset(exp).dir}"

    def list_prefix_option(self, exp: str) -> list[str]:
        """Optional arguments as a list, so that each is quoted on its own in the command."""
        prefix = self.dataset(exp).list_prefix
        return ["--list-prefix", prefix] if prefix else []

    def download_marker(self, source: str) -> str:
        """The workflow's record that source ``source`` of the sources file is in place."""
        return f"{self.data}/.downloads/{source}.json"

    def source_completion_marker(self, source: str) -> str:
        """Where `pixelnerf download` itself marks ``source`` complete (the rule copies it)."""
        from pixelnerf.download.fetch import completion_marker

        return str(completion_marker(source, self.data, self.sources_file, self.checkpoints))

    def synth_marker(self, exp: str) -> str:
        return f"{self.data}/.synth/{exp}.json"

    def fetched(self, exp: str) -> str:
        """The marker of ``exp``'s data downloaded (or synthesized, for the demo)."""
        source = self.dataset(exp).source
        return self.synth_marker(exp) if source == SYNTH_SOURCE else self.download_marker(source)

    def in_place_folder(self, exp: str) -> str | None:
        """The dataset folder of ``exp`` when its source is `in_place` (else None)."""
        ds = self.dataset(exp)
        if ds.source not in self.in_place:
            return None
        root = self.dataset_root(exp)
        if not Path(root).is_dir():
            raise PipelineError(
                f"config key in_place: {ds.source}: dataset folder {root} does not exist"
            )
        if ds.format == SPLIT_FORMAT:
            raise PipelineError(
                f"config key in_place: experiment {exp} writes its split lists into {root}, "
                "which is read only in place"
            )
        return root

    def validated_marker(self, exp: str) -> str:
        return f"{self.results}/{exp}/validate-data.txt"

    def fetched_inputs(self, exp: str) -> list[str]:
        """What validate-data reads after: the download, or nothing for data in place."""
        return [] if self.in_place_folder(exp) is not None else [self.fetched(exp)]

    def download_ready(self, exp: str) -> str:
        """The data of ``exp`` is in place: downloaded or synthesized, or, for an `in_place`
        source, validated where it lies (nothing downloaded, nothing written there)."""
        if self.in_place_folder(exp) is not None:
            return self.validated_marker(exp)
        return self.fetched(exp)

    def dataset_ready(self, exp: str) -> list[str]:
        """The data of ``exp`` is complete: in place, then split where the format needs its
        own lists (the unseen-category lists)."""
        markers = [self.download_ready(exp)]
        if self.dataset(exp).format == SPLIT_FORMAT:
            markers.append(f"{self.results}/{exp}/split/done.json")
        return markers

    # ------------------------------------------------------------------------- weights

    def published_checkpoint(self, exp: str) -> str:
        """Published weights sit in the folder the published zip gives them
        (`train.published_name`, the same name but for multi_chair)."""
        name = self.experiment(exp).train.published_folder(exp)
        return f"{self.checkpoints}/{name}/pixel_nerf_latest"

    def published_marker(self, exp: str) -> str:
        return self.download_marker(self.experiment(exp).train.published_source)

    def weights_in_place(self, exp: str) -> bool:
        return self.experiment(exp).train.published_source in self.in_place

    def published_weights_ready(self, exp: str) -> str:
        """Published weights downloaded, or (`in_place`) a user's, loaded strictly once."""
        if self.weights_in_place(exp):
            return f"{self.results}/{exp}/weights-check.json"
        return self.published_marker(exp)

    def checkpoint_path(self, exp: str) -> str:
        """``<checkpoints>/<exp>/pixel_nerf_latest``, or the published weights."""
        if self.experiment(exp).train.weights == "published":
            return self.published_checkpoint(exp)
        return f"{self.checkpoints}/{exp}/pixel_nerf_latest"

    def weights_ready(self, exp: str) -> str:
        """The file that says the experiment's weights are ready: trained or published."""
        if self.experiment(exp).train.weights == "published":
            return self.published_weights_ready(exp)
        return f"{self.results}/{exp}/train/done.json"

    def init_option(self, exp: str) -> list[str]:
        """``--init <file>``: the weights a training run starts from (`train.init`)."""
        init = self.experiment(exp).train.init
        if init is None:
            return []
        return ["--init", self.published_checkpoint(exp) if init == "published" else init]

    def init_ready(self, exp: str) -> list[str]:
        """`train.init: published` needs the published weights first."""
        if self.experiment(exp).train.init != "published":
            return []
        return [self.published_weights_ready(exp)]

    def train_steps(self, exp: str) -> int:
        """The step budget (`train.steps`, or `--config steps=N`); the trainer's default else."""
        return self.experiment(exp).train.steps

    # ------------------------------------------------------------------------- evaluation

    def settings(self, exp: str) -> list[str]:
        return self.experiment(exp).eval.setting_names

    def shards(self, exp: str) -> int:
        """Render shards: `--config shards=K`, else the experiment's `eval.shards`."""
        if self.config.shards is not None:
            return self.config.shards
        return self.experiment(exp).eval.shards

    def shard_names(self, exp: str) -> list[str]:
        count = self.shards(exp)
        return [f"shard-{k}-of-{count}" for k in range(count)]

    def shard_metrics(self, exp: str) -> list[str]:
        """Every metrics CSV of ``exp``: one per view setting and render shard."""
        return [
            f"{self.results}/{exp}/metrics/{setting}/{name}.csv"
            for setting in self.settings(exp)
            for name in self.shard_names(exp)
        ]

    def setting_manifests(self, exp: str, setting: str) -> list[str]:
        return [f"{self.results}/{exp}/render/{setting}/{n}.json" for n in self.shard_names(exp)]

    def approx_setting(self, exp: str) -> str:
        return self.experiment(exp).eval.approx_setting

    def approx_metrics(self, exp: str) -> str:
        setting = self.approx_setting(exp)
        return f"{self.results}/{exp}/approx/metrics/{setting}/shard-0-of-1.csv"

    def paper_file(self, exp: str) -> str:
        return f"config/paper/{exp}.csv"

    def report_figures(self, exp: str) -> list[str]:
        """The render-vs-truth figures of ``exp``: inputs of its table, so that any table
        target leaves every file that `snakemake --report` collects for it."""
        return [f"{self.results}/figures/{exp}/{s}.png" for s in self.settings(exp)]

    def table_outputs(self, exp: str) -> list[str]:
        """What a table target leaves: the table, its plot, provenance and figures."""
        return [
            f"{self.results}/tables/{exp}.csv",
            f"{self.results}/tables/{exp}.md",
            f"{self.results}/plots/{exp}.png",
            f"{self.results}/tables/{exp}.provenance.json",
        ] + self.report_figures(exp)

    def final_outputs(self) -> list[str]:
        """The default target: the tables of the config's `experiment`."""
        return self.table_outputs(self.config.experiment)
