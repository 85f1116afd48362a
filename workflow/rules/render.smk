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
        mode=[],
        # Inductor's compiled graphs and matmul autotuning results (renderer.compile), kept
        # beside the results rather than in its default under /tmp: every render job of a run
        # can reach that folder, also on other cluster nodes (whose /tmp is their own and may
        # be emptied after each job), so only the first job pays the compilation. A
        # TORCHINDUCTOR_CACHE_DIR set by the user is kept. The folder follows results_root
        # only, never the environment, so that setting the variable later reruns nothing.
        inductor_cache=f"{RESULTS}/.cache/torchinductor",
    threads: stage_threads("render")
    resources:
        **stage_resources("render"),
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads:q} "
        "TORCHINDUCTOR_CACHE_DIR=${{TORCHINDUCTOR_CACHE_DIR:-{params.inductor_cache:q}}} "
        "pixelnerf render {params.mode:q} "
        "--config {params.config:q} --data-root {params.data:q} "
        "--checkpoint {params.checkpoint:q} --setting {wildcards.setting:q} "
        "--shard {wildcards.k:q} --shards {wildcards.K:q} --out {params.out:q} "
        "--device {resources.device:q} > {log:q} 2>&1"


# The approximate evaluation: the same step on a seeded sample of objects and views, in one
# shard of its own folder.
use rule render as approx_render with:
    output:
        manifest=f"{RESULTS}/{{exp}}/approx/render/{{setting}}/shard-{{k}}-of-{{K}}.json",
    log:
        f"{LOGS}/approx_render/{{exp}}/{{setting}}/shard-{{k}}-of-{{K}}.log",
    benchmark:
        f"{BENCH}/approx_render/{{exp}}/{{setting}}/shard-{{k}}-of-{{K}}.tsv"
    params:
        digest=config_digest("approx"),
        out=lambda wildcards: f"{RESULTS}/{wildcards.exp}/approx/render",
        mode=["--approx"],


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
        **stage_resources("light"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf figure --config {params.config:q} --data-root {params.data:q} "
        "--renders {params.renders:q} --setting {wildcards.setting:q} "
        "--manifests {input.manifests:q} --out {output.figure:q} > {log:q} 2>&1"
