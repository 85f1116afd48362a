# Snakemake glue: the global config, typed (pixelnerf.config.global_settings), the run's plan
# (pixelnerf.workflow.plan, where every decision lives) and the names the rule files use, each
# handing the plan an experiment.
#
# A bad config stops while the Snakefile is read, a bad target (an unknown experiment, a
# missing photo) while the DAG is built: each with one line naming the key, file or value,
# before any job runs and without touching results already written (pixelnerf.workflow.glue).
import os
from functools import partial
from types import SimpleNamespace

from pixelnerf.workflow import photos
from pixelnerf.workflow.glue import by_exp, one_line
from pixelnerf.workflow.gpu_slots import SLOT_DIR_ENV as GPU_SLOT_DIR_ENV
from pixelnerf.workflow.plan import LPIPS_NETS, SOURCES_FILE, Plan, read_global_config

SETTINGS = one_line(read_global_config)(config)
PLAN = one_line(Plan)(SETTINGS, SOURCES_FILE)

RESULTS = PLAN.results
DATA = PLAN.data
CHECKPOINTS = PLAN.checkpoints
LOGS = PLAN.logs
BENCH = PLAN.bench
# Software of every rule under `--sdm conda` (relative to the rule files).
CONDA_ENV = "../../envs/pixelnerf.yaml"

# Local GPU jobs each take free GPUs through lock files here (pixelnerf.workflow.gpu_slots);
# jobs under SLURM keep the devices SLURM gives them.
os.environ.setdefault(GPU_SLOT_DIR_ENV, os.path.abspath(".snakemake/gpu-slots"))

# Functions of an experiment's name (for params written as lambdas of the wildcards).
dataset_cfg = one_line(PLAN.dataset)
dataset_root = one_line(PLAN.dataset_root)
list_prefix_option = one_line(PLAN.list_prefix_option)
synth_marker = PLAN.synth_marker
download_marker = PLAN.download_marker
source_completion_marker = one_line(PLAN.source_completion_marker)
published_checkpoint = one_line(PLAN.published_checkpoint)
checkpoint_path = one_line(PLAN.checkpoint_path)
init_option = one_line(PLAN.init_option)
train_steps = one_line(PLAN.train_steps)
settings_of = one_line(PLAN.settings)
shard_names = one_line(PLAN.shard_names)

# Resources and options of the global config.
stage_threads = PLAN.stage_threads
stage_resources = PLAN.stage_resources
train_resources = PLAN.train_resources
lpips_options = PLAN.lpips_options

# Input functions of rules with the wildcard `exp`.
get_experiment_file = by_exp(PLAN.config_file)
get_fetched = by_exp(PLAN.fetched_inputs)
get_download_ready = by_exp(PLAN.download_ready)
get_dataset_ready = by_exp(PLAN.dataset_ready)
get_init_ready = by_exp(PLAN.init_ready)
get_weights = by_exp(PLAN.weights_ready)
get_shard_metrics = by_exp(PLAN.shard_metrics)
get_approx_metrics = by_exp(PLAN.approx_metrics)
get_paper = by_exp(PLAN.paper_file)
get_report_figures = by_exp(PLAN.report_figures)
# the LPIPS trunks' downloads, where the run fetches them: VGG for metrics, all for sensitivity
get_lpips_trunk = by_exp(PLAN.lpips_trunks)
get_lpips_trunks = by_exp(partial(PLAN.lpips_trunks, nets=LPIPS_NETS))


def config_digest(stage):
    """A param function: digest of the config sections that ``stage`` reads."""
    return by_exp(partial(PLAN.config_digest, stage))


def get_compare_metrics_a(wildcards):
    return get_shard_metrics(SimpleNamespace(exp=wildcards.a))


def get_compare_metrics_b(wildcards):
    return get_shard_metrics(SimpleNamespace(exp=wildcards.b))


def get_setting_manifests(wildcards):
    return one_line(PLAN.setting_manifests)(wildcards.exp, wildcards.setting)


def workflow_config_json(wildcards):
    return PLAN.config_json()


def get_final_outputs():
    return one_line(PLAN.final_outputs)()


# Real photographs (videos.smk): the folder `real_input` and its photos.
REAL_INPUT = SETTINGS.real_input
real_photos = partial(photos.real_photos, REAL_INPUT)
write_real_index = photos.write_index


def get_real_photo(wildcards):
    return one_line(photos.photo_path)(REAL_INPUT, wildcards.photo)


def get_real_mask(wildcards):
    return photos.mask_files(REAL_INPUT, wildcards.photo)


def get_real_done(wildcards):
    names = one_line(photos.photo_names)(REAL_INPUT)
    return [f"{RESULTS}/real/{wildcards.exp}/{name}/done.json" for name in names]
