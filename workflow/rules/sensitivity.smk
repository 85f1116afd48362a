# How an experiment's table total moves with each choice of the evaluation protocol: the
# reference row is the table's own total (the same metrics files); the variants re-score
# the existing PNGs, or render again, on a seeded sample, only what a choice changes
# (`pixelnerf sensitivity`).


rule sensitivity:
    input:
        metrics=get_shard_metrics,
        weights=get_weights,
        data=get_dataset_ready,
        lpips=get_lpips_trunks,
    output:
        csv=report(
            f"{RESULTS}/sensitivity/{{exp}}.csv",
            caption="../report/sensitivity.rst",
            category="Sensitivity",
            labels={"experiment": "{exp}", "file": "table (CSV)"},
        ),
        md=f"{RESULTS}/sensitivity/{{exp}}.md",
        plot=report(
            f"{RESULTS}/plots/{{exp}}_sensitivity.png",
            caption="../report/sensitivity_plot.rst",
            category="Sensitivity",
            labels={"experiment": "{exp}", "file": "plot"},
        ),
    log:
        f"{LOGS}/sensitivity/{{exp}}.log",
    benchmark:
        f"{BENCH}/sensitivity/{{exp}}.tsv"
    params:
        config=get_experiment_file,
        # it renders as the render step does, from the same sections
        digest=config_digest("render"),
        data=DATA,
        checkpoint=lambda wildcards: checkpoint_path(wildcards.exp),
        renders=lambda wildcards: f"{RESULTS}/{wildcards.exp}/render",
        lpips=lpips_options(),
    threads: stage_threads("render")
    resources:
        **stage_resources("render"),
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads:q} pixelnerf sensitivity --config {params.config:q} "
        "--data-root {params.data:q} --checkpoint {params.checkpoint:q} "
        "--renders {params.renders:q} --metrics {input.metrics:q} "
        "--out-csv {output.csv:q} --out-md {output.md:q} --out-plot {output.plot:q} "
        "{params.lpips:q} --workers {threads:q} --device {resources.device:q} > {log:q} 2>&1"
