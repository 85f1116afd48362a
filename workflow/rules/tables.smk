# Stage 6: the table beside the paper's numbers, its plot, and the provenance record beside
# it (git commit, configs, package versions, device, wall time per stage from the benchmarks).


rule table:
    input:
        metrics=get_shard_metrics,
        paper=get_paper,
        figures=get_report_figures,
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
        provenance=report(
            f"{RESULTS}/tables/{{exp}}.provenance.json",
            caption="../report/provenance.rst",
            category="Provenance",
            labels={"experiment": "{exp}"},
        ),
    log:
        f"{LOGS}/tables/{{exp}}.log",
    benchmark:
        f"{BENCH}/tables/{{exp}}.tsv"
    params:
        config=get_experiment_file,
        digest=config_digest("table"),
        benchmarks=BENCH,
        workflow_config=workflow_config_json,
    threads: stage_threads("light")
    conda:
        CONDA_ENV
    resources:
        gpu=0,
        mem_mb=stage_mem("light"),
        runtime=stage_runtime("light"),
    shell:
        "pixelnerf table --config {params.config} --metrics {input.metrics} "
        "--paper {input.paper} --out-csv {output.csv} --out-md {output.md} "
        "--out-plot {output.plot} > {log} 2>&1 && "
        "pixelnerf provenance --config {params.config} --experiment {wildcards.exp} "
        "--benchmarks {params.benchmarks} --table {output.csv} "
        "--workflow-config {params.workflow_config:q} --device {config[device]} "
        "--out {output.provenance} >> {log} 2>&1"



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
    conda:
        CONDA_ENV
    resources:
        gpu=0,
        mem_mb=stage_mem("light"),
        runtime=stage_runtime("light"),
    shell:
        "pixelnerf approx-summary --metrics {input.metrics} --out {output.csv} > {log} 2>&1"
