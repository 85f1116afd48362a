# pixelNeRF from data to the paper's tables: `snakemake --cores N results/tables/<exp>.csv`.
# This file only wires the stages; config/README.md documents every key.
from snakemake.utils import min_version

# 9.0: `use rule ... with: params:` replaces only the params it names, keeping the others.
min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# common.smk first: the plan of the run and the names every rule file uses. A new rule file
# is one `include:` line below (rules that must run here, not on a cluster node, say
# `localrule: True` in the file itself).
include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/render.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/videos.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/sensitivity.smk"


# Jobs that run where Snakemake runs, never as cluster jobs: downloads need the network
# (compute nodes often have none); the others take seconds.
localrules:
    all,
    download,
    table,
    provenance,
    compare_figure,
    approx_summary,


wildcard_constraints:
    exp="[A-Za-z0-9_]+",
    setting="[A-Za-z0-9_]+",
    k="[0-9]+",
    K="[0-9]+",
    source="[A-Za-z0-9_.-]+",


rule all:
    default_target: True
    input:
        get_final_outputs(),
