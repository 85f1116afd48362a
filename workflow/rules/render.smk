# Stage 4: rendering, sharded: shard k of K renders every K-th test object (one GPU job each
# on SLURM). Finished objects are skipped on a rerun; the manifest is written last.


rule render:
    input:
        weights=get_weights,
        data=get_dataset_ready,
    output:
        manifest=f"{RESULTS}/{{exp}}/render/{{setting}}/shard-{{k}}-of-{{K}}.json",
    log:
        f"{LOGS}/render/{{exp}}/{{setting}}/shard-{{k}}-of-{{K}}.log",
    benchmark:
        f"{BENCH}/render/{{exp}}/{{setting}}/shard-{{k}}-of-{{K}}.tsv"
    params:
        config=get_experiment_file,
        digest=config_digest("render"),
        data=DATA,
        checkpoint=lambda wildcards: checkpoint_path(wildcards.exp),
        out=lambda wildcards: f"{RESULTS}/{wildcards.exp}/render",
    threads: stage_threads("render")
    resources:
        gpu=stage_gpu("render"),
        mem_mb=stage_mem("render"),
        runtime=stage_runtime("render"),
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} pixelnerf render --config {params.config} "
        "--data-root {params.data} --checkpoint {params.checkpoint} "
        "--setting {wildcards.setting} --shard {wildcards.k} --shards {wildcards.K} "
        "--out {params.out} --device {config[device]} > {log} 2>&1"


rule compare_figure:
    input:
        manifests=get_setting_manifests,
    output:
        figure=report(
            f"{RESULTS}/figures/{{exp}}/{{setting}}.png",
            caption="../report/renders.rst",
            category="Renders",
            subcategory="{exp}",
            labels={"experiment": "{exp}", "views": "{setting}"},
        ),
    log:
        f"{LOGS}/figures/{{exp}}/{{setting}}.log",
    benchmark:
        f"{BENCH}/figures/{{exp}}/{{setting}}.tsv"
    params:
        config=get_experiment_file,
        digest=config_digest("figure"),
        data=DATA,
        renders=lambda wildcards: f"{RESULTS}/{wildcards.exp}/render",
    threads: stage_threads("light")
    resources:
        gpu=0,
        mem_mb=stage_mem("light"),
        runtime=stage_runtime("light"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf figure --config {params.config} --data-root {params.data} "
        "--renders {params.renders} --setting {wildcards.setting} "
        "--manifests {input.manifests} --out {output.figure} > {log} 2>&1"


rule approx_render:
    input:
        weights=get_weights,
        data=get_dataset_ready,
    output:
        manifest=f"{RESULTS}/{{exp}}/approx/render/{{setting}}/shard-0-of-1.json",
    log:
        f"{LOGS}/approx_render/{{exp}}/{{setting}}.log",
    benchmark:
        f"{BENCH}/approx_render/{{exp}}/{{setting}}.tsv"
    params:
        config=get_experiment_file,
        digest=config_digest("approx"),
        data=DATA,
        checkpoint=lambda wildcards: checkpoint_path(wildcards.exp),
        out=lambda wildcards: f"{RESULTS}/{wildcards.exp}/approx/render",
    threads: stage_threads("render")
    conda:
        CONDA_ENV
    resources:
        gpu=stage_gpu("render"),
        mem_mb=stage_mem("render"),
        runtime=stage_runtime("render"),
    shell:
        "OMP_NUM_THREADS={threads} pixelnerf render --approx --config {params.config} "
        "--data-root {params.data} --checkpoint {params.checkpoint} "
        "--setting {wildcards.setting} --shard 0 --shards 1 "
        "--out {params.out} --device {config[device]} > {log} 2>&1"
