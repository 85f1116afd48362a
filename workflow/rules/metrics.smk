# Stage 5: metrics per object from the 8-bit PNGs on disk, one CSV per render shard.


rule metrics:
    input:
        manifest=f"{RESULTS}/{{exp}}/render/{{setting}}/shard-{{k}}-of-{{K}}.json",
        data=get_dataset_ready,
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
        lpips=lpips_option(),
    threads: stage_threads("metrics")
    resources:
        gpu=stage_gpu("metrics"),
        mem_mb=stage_mem("metrics"),
        runtime=stage_runtime("metrics"),
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} pixelnerf metrics --config {params.config} "
        "--data-root {params.data} --manifest {input.manifest} --renders {params.renders} "
        "--out {output.csv} {params.lpips} --device {config[device]} > {log} 2>&1"


rule approx_metrics:
    input:
        manifest=f"{RESULTS}/{{exp}}/approx/render/{{setting}}/shard-0-of-1.json",
        data=get_dataset_ready,
    output:
        csv=f"{RESULTS}/{{exp}}/approx/metrics/{{setting}}/shard-0-of-1.csv",
    log:
        f"{LOGS}/approx_metrics/{{exp}}/{{setting}}.log",
    benchmark:
        f"{BENCH}/approx_metrics/{{exp}}/{{setting}}.tsv"
    params:
        config=get_experiment_file,
        digest=config_digest("approx"),
        data=DATA,
        renders=lambda wildcards: f"{RESULTS}/{wildcards.exp}/approx/render",
        lpips=lpips_option(),
    threads: stage_threads("metrics")
    conda:
        CONDA_ENV
    resources:
        gpu=stage_gpu("metrics"),
        mem_mb=stage_mem("metrics"),
        runtime=stage_runtime("metrics"),
    shell:
        "OMP_NUM_THREADS={threads} pixelnerf metrics --config {params.config} "
        "--data-root {params.data} --manifest {input.manifest} --renders {params.renders} "
        "--out {output.csv} {params.lpips} --device {config[device]} > {log} 2>&1"
