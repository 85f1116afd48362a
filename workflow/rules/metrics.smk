# Stage 5: metrics per object from the 8-bit PNGs on disk, one CSV per render shard.


rule metrics:
    input:
        manifest=f"{RESULTS}/{{exp}}/render/{{setting}}/shard-{{k}}-of-{{K}}.json",
        data=get_dataset_ready,
        lpips=get_lpips_trunk,
    output:
        csv=f"{RESULTS}/{{exp}}/metrics/{{setting}}/shard-{{k}}-of-{{K}}.csv",
    log:
        f"{LOGS}/metrics/{{exp}}/{{setting}}/shard-{{k}}-of-{{K}}.log",
    benchmark:
        f"{BENCH}/metrics/{{exp}}/{{setting}}/shard-{{k}}-of-{{K}}.tsv"
    params:
        config=get_experiment_file,
        digest=config_digest("metrics"),
        data=DATA,
        renders=lambda wildcards: f"{RESULTS}/{wildcards.exp}/render",
        lpips=lpips_options(),
    threads: stage_threads("metrics")
    resources:
        **stage_resources("metrics"),
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads:q} pixelnerf metrics --config {params.config:q} "
        "--data-root {params.data:q} --manifest {input.manifest:q} "
        "--renders {params.renders:q} --out {output.csv:q} {params.lpips:q} "
        "--workers {threads:q} --device {resources.device:q} > {log:q} 2>&1"


# Scores of the approximate evaluation's renders.
use rule metrics as approx_metrics with:
    input:
        manifest=f"{RESULTS}/{{exp}}/approx/render/{{setting}}/shard-{{k}}-of-{{K}}.json",
        data=get_dataset_ready,
        lpips=get_lpips_trunk,
    output:
        csv=f"{RESULTS}/{{exp}}/approx/metrics/{{setting}}/shard-{{k}}-of-{{K}}.csv",
    log:
        f"{LOGS}/approx_metrics/{{exp}}/{{setting}}/shard-{{k}}-of-{{K}}.log",
    benchmark:
        f"{BENCH}/approx_metrics/{{exp}}/{{setting}}/shard-{{k}}-of-{{K}}.tsv"
    params:
        digest=config_digest("approx"),
        renders=lambda wildcards: f"{RESULTS}/{wildcards.exp}/approx/render",
