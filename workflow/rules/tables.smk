# Stage 6: the table beside the paper's numbers and its plot; the provenance record beside
# it (git commit, configs, package versions, device, wall time per stage from the benchmarks).


rule table:
    input:
        metrics=get_shard_metrics,
        paper=get_paper,
        figures=get_report_figures,
        provenance=f"{RESULTS}/tables/{{exp}}.provenance.json",
    output:
        csv=report(
            f"{RESULTS}/tables/{{exp}}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"experiment": "{exp}", "file": "table (CSV)"},
        ),
        md=f"{RESULTS}/tables/{{exp}}.md",
        plot=report(
            f"{RESULTS}/plots/{{exp}}.png",
            caption="../report/plot.rst",
            category="Tables",
            labels={"experiment": "{exp}", "file": "plot"},
        ),
    log:
        f"{LOGS}/tables/{{exp}}.log",
    benchmark:
        f"{BENCH}/tables/{{exp}}.tsv"
    params:
        config=get_experiment_file,
        digest=config_digest("table"),
    threads: stage_threads("light")
    resources:
        **stage_resources("light"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf table --config {params.config:q} --metrics {input.metrics:q} "
        "--paper {input.paper:q} --out-csv {output.csv:q} --out-md {output.md:q} "
        "--out-plot {output.plot:q} > {log:q} 2>&1"


rule provenance:
    # Made before the table, from what the table is made of, so that every table target also
    # builds what `snakemake --report` shows beside it.
    input:
        metrics=get_shard_metrics,
    output:
        provenance=report(
            f"{RESULTS}/tables/{{exp}}.provenance.json",
            caption="../report/provenance.rst",
            category="Provenance",
            labels={"experiment": "{exp}"},
        ),
    log:
        f"{LOGS}/provenance/{{exp}}.log",
    params:
        config=get_experiment_file,
        digest=config_digest("table"),
        benchmarks=BENCH,
        workflow_config=workflow_config_json,
        table=lambda wildcards: f"{RESULTS}/tables/{wildcards.exp}.csv",
    threads: stage_threads("light")
    resources:
        **stage_resources("light"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf provenance --config {params.config:q} --experiment {wildcards.exp:q} "
        "--benchmarks {params.benchmarks:q} --table {params.table:q} "
        "--workflow-config {params.workflow_config:q} --device {resources.device:q} "
        "--metrics {input.metrics:q} --out {output.provenance:q} > {log:q} 2>&1"


rule approx_summary:
    input:
        metrics=get_approx_metrics,
    output:
        csv=report(
            f"{RESULTS}/approx/{{exp}}.csv",
            caption="../report/approx.rst",
            category="Approximate evaluation",
            labels={"experiment": "{exp}"},
        ),
    log:
        f"{LOGS}/approx_summary/{{exp}}.log",
    benchmark:
        f"{BENCH}/approx_summary/{{exp}}.tsv"
    threads: stage_threads("light")
    resources:
        **stage_resources("light"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf approx-summary --metrics {input.metrics:q} --out {output.csv:q} "
        "> {log:q} 2>&1"
