# Config validation and the input functions of every stage; the rule files hold rules only.
#
# A bad config stops here, while the Snakefile is read, with one line naming the key or the
# path: before any job runs, and without touching results already written.
import hashlib
import json
import os
import sys
from functools import lru_cache
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from pixelnerf.config import CONFIG_SCHEMA, load_experiment, load_schema, load_yaml, schema_path
from pixelnerf.config import validate as validate_mapping
from pixelnerf.errors import PipelineError
from pixelnerf.workflow.gpu_slots import SLOT_DIR_ENV as GPU_SLOT_DIR_ENV
from pixelnerf.train.config import TrainConfig

DEFAULT_DATA_ROOT = load_schema(CONFIG_SCHEMA)["properties"]["data_root"]["default"]
SOURCES_FILE = "config/sources.yaml"
# Software of every rule under `--sdm conda` (relative to the rule files).
CONDA_ENV = "../../envs/pixelnerf.yaml"


def stop(message):
    """End the run before any job with one line (no traceback)."""
    print(f"pixelnerf workflow: error: {message}", file=sys.stderr)
    sys.exit(1)


try:
    validate_mapping(config, CONFIG_SCHEMA, "workflow config (config/config.yaml + --config)")
except PipelineError as exc:
    stop(exc)
# Passes now; run for the schema's defaults (snakemake's validator fills them in).
validate(config, schema=str(schema_path(CONFIG_SCHEMA)))

# Keys whose values become paths in shell commands. The rules quote every value, so spaces,
# quotes, `;` or `$` are ordinary characters; a newline or NUL would still split a command
# line or a path list and is refused.
PATH_KEYS = ("data_root", "results_root", "checkpoints_root", "experiments_dir")


def check_path_keys(cfg):
    for key in PATH_KEYS:
        value = cfg[key]
        for char, name in (("\n", "a newline"), ("\r", "a carriage return"), ("\0", "a NUL")):
            if char in value:
                stop(f"config key {key}: {value!r} contains {name}; choose another folder name")


check_path_keys(config)
RESULTS = config["results_root"]
DATA = config["data_root"]
CHECKPOINTS = config["checkpoints_root"]
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
EXPERIMENTS_DIR = Path(config["experiments_dir"])

if not Path(DATA).is_dir() and DATA != DEFAULT_DATA_ROOT:
    # The default folder is created by the download and synth steps; a configured one that
    # does not exist is a typo, and downloading a dataset into it would be wrong.
    stop(f"config key data_root: folder {DATA} does not exist")
# Sources (keys of config/sources.yaml) a user already holds under data_root or
# checkpoints_root: validated and used where they lie, never downloaded or written into.
IN_PLACE = set(config["in_place"])
_known_sources = set(load_yaml(SOURCES_FILE).get("sources", {}))
for _source in sorted(IN_PLACE - _known_sources):
    stop(
        f"config key in_place: {_source} is not a source of {SOURCES_FILE} "
        f"(known: {', '.join(sorted(_known_sources))})"
    )
if not EXPERIMENTS_DIR.is_dir():
    stop(f"config key experiments_dir: folder {EXPERIMENTS_DIR} does not exist")


def experiment_file(name):
    return str(EXPERIMENTS_DIR / f"{name}.yaml")


def known_experiments():
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


TRAIN_OVERRIDES = ("weights", "steps")


@lru_cache(maxsize=None)
def experiment(name):
    """The validated experiment config ``<experiments_dir>/<name>.yaml``."""
    path = Path(experiment_file(name))
    if not path.is_file():
        raise WorkflowError(
            f"unknown experiment {name!r}: {path} does not exist "
            f"(known: {', '.join(known_experiments())})"
        )
    try:
        cfg = load_experiment(path)
    except PipelineError as exc:
        raise WorkflowError(str(exc)) from None
    if cfg["name"] != name:
        raise WorkflowError(
            f"{path}: key name: {cfg['name']!r} differs from the file name {name!r}"
        )
    # `--config weights=train steps=N` switches every experiment of the run, no file edited
    overrides = {key: config[key] for key in TRAIN_OVERRIDES if config.get(key) is not None}
    if overrides:
        cfg = {**cfg, "train": {**cfg["train"], **overrides}}
    return cfg


# Every experiment file is checked now, so a misspelt key anywhere stops the run at once.
for _name in known_experiments():
    try:
        experiment(_name)
    except WorkflowError as exc:
        stop(exc.args[0] if exc.args else exc)
if config["experiment"] not in known_experiments():
    stop(
        f"config key experiment: {experiment_file(config['experiment'])} does not exist "
        f"(known: {', '.join(known_experiments())})"
    )


# ----------------------------------------------------------------------------- resources


def stage_threads(stage):
    return config["resources"]["threads"][stage]


def stage_resources(stage, runtime=None):
    """The resources of a job of ``stage`` (a key of the config's `resources`): a GPU where
    the stage is one of `gpu_stages`, its memory, its minutes (those of ``runtime`` when
    given) growing with the attempt so that a retried job gets more time, and the torch
    device. The device is a resource, not a param: a param change reruns a job, and results
    made on one device stay valid when the next step runs on another."""
    minutes = config["resources"]["runtime"][runtime or stage]
    return {
        "gpu": 1 if stage in config["resources"]["gpu_stages"] else 0,
        "mem_mb": config["resources"]["mem_mb"][stage],
        "runtime": lambda wildcards, attempt: minutes * attempt,
        "device": config["device"],
    }


def train_gpus(wildcards):
    """GPUs (data-parallel processes) of an experiment's training job: train.gpus."""
    return TrainConfig.from_mapping(experiment(wildcards.exp)["train"]).gpus


def train_resources():
    """``stage_resources("train")`` with ``train.gpus``: the GPUs asked for and the processes
    of the job (``pixelnerf train --gpus``); resources, so that another count reruns nothing."""
    resources = stage_resources("train")
    on_gpu = resources["gpu"]
    resources["gpu"] = lambda wildcards: train_gpus(wildcards) * on_gpu
    resources["processes"] = train_gpus
    return resources


# Local GPU jobs each take free GPUs through lock files here (pixelnerf.workflow.gpu_slots); jobs
# under SLURM keep the devices SLURM gives them.
os.environ.setdefault(GPU_SLOT_DIR_ENV, os.path.abspath(".snakemake/gpu-slots"))


# ----------------------------------------------------------------------------- data


def dataset_cfg(exp):
    return experiment(exp)["dataset"]


def dataset_root(exp):
    return f"{DATA}/{dataset_cfg(exp)['dir']}"


def list_prefix_option(exp):
    """Optional arguments as a list, so that each is quoted on its own in the shell command."""
    prefix = dataset_cfg(exp).get("list_prefix")
    return ["--list-prefix", prefix] if prefix else []


def download_marker(source):
    """The workflow's record that source ``source`` of config/sources.yaml is in place."""
    return f"{DATA}/.downloads/{source}.json"


def source_completion_marker(source):
    """Where `pixelnerf download` itself marks ``source`` complete (the rule copies it)."""
    from pixelnerf.download.fetch import completion_marker

    try:
        return str(completion_marker(source, DATA, SOURCES_FILE, CHECKPOINTS))
    except PipelineError as exc:
        raise WorkflowError(str(exc)) from None


def synth_marker(exp):
    return f"{DATA}/.synth/{exp}.json"


def fetched(exp):
    """The data of ``exp`` is downloaded (or synthesized, for the demo)."""
    ds = dataset_cfg(exp)
    if ds["source"] == "synth-demo":
        return synth_marker(exp)
    return download_marker(ds["source"])


def in_place_folder(exp):
    """The dataset folder of ``exp`` when its source is `in_place` (else None); a missing
    one stops the run, naming the key and the folder."""
    if dataset_cfg(exp)["source"] not in IN_PLACE:
        return None
    root = dataset_root(exp)
    if not Path(root).is_dir():
        raise WorkflowError(
            f"config key in_place: {dataset_cfg(exp)['source']}: dataset "
            f"folder {root} does not exist"
        )
    if dataset_cfg(exp)["format"] == "dvr_gen":
        raise WorkflowError(
            f"config key in_place: experiment {exp} writes its split lists "
            f"into {root}, which is read only in place"
        )
    return root


def validated_marker(exp):
    return f"{RESULTS}/{exp}/validate-data.txt"


def download_ready(exp):
    """The data of ``exp`` is in place: downloaded or synthesized, or, for an `in_place`
    source, validated where it lies (nothing downloaded, nothing written there)."""
    if in_place_folder(exp) is not None:
        return validated_marker(exp)
    return fetched(exp)


def get_fetched(wildcards):
    """What validate-data reads after: the download, or nothing for data in place."""
    return [] if in_place_folder(wildcards.exp) is not None else [fetched(wildcards.exp)]


def dataset_ready(exp):
    """The data of ``exp`` is complete: downloaded or synthesized, then split where the format
    needs its own lists (dvr_gen: the unseen-category lists)."""
    markers = [download_ready(exp)]
    if dataset_cfg(exp)["format"] == "dvr_gen":
        markers.append(f"{RESULTS}/{exp}/split/done.json")
    return markers


def get_download_ready(wildcards):
    return download_ready(wildcards.exp)


def get_dataset_ready(wildcards):
    return dataset_ready(wildcards.exp)


def get_experiment_file(wildcards):
    experiment(wildcards.exp)  # an unknown experiment stops here, naming the file
    return experiment_file(wildcards.exp)


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
PRESENTATION_KEYS = {"shards", "report_objects", "report_views", "approx", "table_rows"}
# train keys that leave the training unchanged (the same global batch on any GPU count)
TRAIN_RESOURCE_KEYS = {"gpus"}


def config_digest(stage):
    """A param function: digest of the config sections that ``stage`` reads."""

    def digest(wildcards):
        cfg = experiment(wildcards.exp)
        parts = {name: cfg.get(name) for name in STAGE_SECTIONS[stage]}
        if stage in ("render", "metrics"):
            parts["eval"] = {k: v for k, v in cfg["eval"].items() if k not in PRESENTATION_KEYS}
        if stage == "train":
            parts["train"] = {k: v for k, v in cfg["train"].items() if k not in TRAIN_RESOURCE_KEYS}
        text = json.dumps(parts, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    return digest


# ----------------------------------------------------------------------------- weights


def weights_mode(exp):
    return experiment(exp)["train"]["weights"]


def published_checkpoint(exp):
    """Published weights sit in the folder the published zip gives them
    (`train.published_name`, the same name but for multi_chair)."""
    train = experiment(exp)["train"]
    return f"{CHECKPOINTS}/{train.get('published_name', exp)}/pixel_nerf_latest"


def published_marker(exp):
    return download_marker(experiment(exp)["train"].get("published_source", "pretrained"))


def checkpoint_path(exp):
    """``<checkpoints>/<exp>/pixel_nerf_latest``, or the published weights."""
    if weights_mode(exp) == "published":
        return published_checkpoint(exp)
    return f"{CHECKPOINTS}/{exp}/pixel_nerf_latest"


def init_option(exp):
    """``--init <file>``: the weights a training run starts from (`train.init`); none else."""
    init = experiment(exp)["train"].get("init")
    if init is None:
        return []
    return ["--init", published_checkpoint(exp) if init == "published" else init]


def get_init_ready(wildcards):
    """`train.init: published` needs the published weights downloaded first."""
    init = experiment(wildcards.exp)["train"].get("init")
    if init != "published":
        return []
    if weights_in_place(wildcards.exp):
        return [f"{RESULTS}/{wildcards.exp}/weights-check.json"]
    return [published_marker(wildcards.exp)]


def train_steps(exp):
    """The step budget (`train.steps`, or `--config steps=N`); the trainer's default else."""
    from pixelnerf.train.config import TrainConfig

    return experiment(exp)["train"].get("steps", TrainConfig.steps)


def weights_in_place(exp):
    return experiment(exp)["train"].get("published_source", "pretrained") in IN_PLACE


def get_weights(wildcards):
    """The file that says the experiment's weights are ready: training, the published ones
    downloaded, or (`in_place`) the published ones a user has, loaded strictly once."""
    if weights_mode(wildcards.exp) == "published":
        if weights_in_place(wildcards.exp):
            return f"{RESULTS}/{wildcards.exp}/weights-check.json"
        return published_marker(wildcards.exp)
    return f"{RESULTS}/{wildcards.exp}/train/done.json"


# ----------------------------------------------------------------------------- evaluation


def settings_of(exp):
    return list(experiment(exp)["eval"]["settings"])


def shards_of(exp):
    return config["shards"] or experiment(exp)["eval"]["shards"]


def shard_names(exp):
    K = shards_of(exp)
    return [f"shard-{k}-of-{K}" for k in range(K)]


def get_shard_metrics(wildcards):
    exp = wildcards.exp
    return [
        f"{RESULTS}/{exp}/metrics/{s}/{name}.csv"
        for s in settings_of(exp)
        for name in shard_names(exp)
    ]


def get_setting_manifests(wildcards):
    exp = wildcards.exp
    return [f"{RESULTS}/{exp}/render/{wildcards.setting}/{n}.json" for n in shard_names(exp)]


def approx_setting(exp):
    approx = experiment(exp)["eval"].get("approx") or {}
    return approx.get("setting") or settings_of(exp)[0]


def get_approx_metrics(wildcards):
    exp = wildcards.exp
    return f"{RESULTS}/{exp}/approx/metrics/{approx_setting(exp)}/shard-0-of-1.csv"


def paper_file(exp):
    return f"config/paper/{exp}.csv"


def get_paper(wildcards):
    return paper_file(wildcards.exp)


def workflow_config_json(wildcards):
    """The global config of this run as JSON (for the provenance record)."""
    return json.dumps(config, sort_keys=True)


def get_report_figures(wildcards):
    """The render-vs-truth figures of ``exp``: inputs of its table, so that any table target
    leaves every file that `snakemake --report` collects for it."""
    return [f"{RESULTS}/figures/{wildcards.exp}/{s}.png" for s in settings_of(wildcards.exp)]


def table_outputs(exp):
    return [
        f"{RESULTS}/tables/{exp}.csv",
        f"{RESULTS}/tables/{exp}.md",
        f"{RESULTS}/plots/{exp}.png",
        f"{RESULTS}/tables/{exp}.provenance.json",
    ] + [f"{RESULTS}/figures/{exp}/{s}.png" for s in settings_of(exp)]


def get_final_outputs():
    return table_outputs(config["experiment"])


def lpips_option():
    weights = config.get("lpips_weights")
    return ["--lpips-weights", weights] if weights else []


# Real photographs (videos.smk): the folder `real_input` and its photos.
REAL_INPUT = config.get("real_input", "input")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# `<photo>_mask.png` beside a photo is its mask (then Mask R-CNN is not needed); published
# preprocessing outputs `*_normalize.png` are not photos either.
NOT_PHOTO_ENDINGS = ("_mask", "_normalize")


def real_photos():
    """Photo name (file stem) -> path, for every photo in the folder `real_input`."""
    folder = Path(REAL_INPUT)
    if not folder.is_dir():
        return {}
    return {
        p.stem: str(p)
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in PHOTO_SUFFIXES and not p.stem.endswith(NOT_PHOTO_ENDINGS)
    }


def get_real_photo(wildcards):
    photos = real_photos()
    if wildcards.photo not in photos:
        raise WorkflowError(
            f"no photo named {wildcards.photo} in {REAL_INPUT}/ "
            f"(found: {', '.join(photos) or 'none'})"
        )
    return photos[wildcards.photo]


def get_real_mask(wildcards):
    mask = Path(REAL_INPUT) / f"{wildcards.photo}_mask.png"
    return [str(mask)] if mask.is_file() else []


def write_real_index(photos, done_files, index_file, log_file):
    """Photo name -> its result folder, for every photo of `real_input`, as JSON."""
    from pixelnerf.io import atomic_write_text

    if not photos:
        raise WorkflowError(f"no photos in {REAL_INPUT}/ (put car photos there)")
    index = {name: str(Path(done).parent) for name, done in zip(photos, done_files)}
    atomic_write_text(index_file, json.dumps(index, indent=1) + "\n")
    atomic_write_text(log_file, f"{len(index)} photos indexed in {index_file}\n")
