# Videos and real photographs (the published gen_video and eval_real), as targets:
#   results/videos/<exp>/<object id>.mp4   novel views along the published camera path
#   results/real/<exp>/<photo>/turntable.mp4 (and stills, done.json)   one photo of input/
#   results/real/<exp>/index.json          every photo of the folder `real_input` (input/)
# Settings: the experiment's `video` and `real` sections (config/README.md).


rule video:
    input:
        weights=get_weights,
        data=get_dataset_ready,
    output:
        video=f"{RESULTS}/videos/{{exp}}/{{object}}.mp4",
    log:
        f"{LOGS}/videos/{{exp}}/{{object}}.log",
    benchmark:
        f"{BENCH}/videos/{{exp}}/{{object}}.tsv"
    params:
        config=get_experiment_file,
        digest=config_digest("video"),
        data=DATA,
        checkpoint=lambda wildcards: checkpoint_path(wildcards.exp),
    threads: stage_threads("render")
    resources:
        **stage_resources("render"),
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads:q} pixelnerf video --config {params.config:q} "
        "--data-root {params.data:q} --checkpoint {params.checkpoint:q} "
        "--object {wildcards.object:q} --out {output.video:q} --device {resources.device:q} "
        "> {log:q} 2>&1"


rule real_photo:
    input:
        photo=get_real_photo,
        mask=get_real_mask,
        weights=get_weights,
    output:
        video=f"{RESULTS}/real/{{exp}}/{{photo}}/turntable.mp4",
        done=f"{RESULTS}/real/{{exp}}/{{photo}}/done.json",
    log:
        f"{LOGS}/real/{{exp}}/{{photo}}.log",
    benchmark:
        f"{BENCH}/real/{{exp}}/{{photo}}.tsv"
    params:
        config=get_experiment_file,
        digest=config_digest("real"),
        checkpoint=lambda wildcards: checkpoint_path(wildcards.exp),
        mask=lambda wildcards, input: ["--mask", input.mask] if input.mask else [],
        out=lambda wildcards: f"{RESULTS}/real/{wildcards.exp}",
    threads: stage_threads("render")
    resources:
        **stage_resources("render"),
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads:q} pixelnerf real {input.photo:q} {params.mask:q} "
        "--name {wildcards.photo:q} --config {params.config:q} "
        "--checkpoint {params.checkpoint:q} --out {params.out:q} "
        "--device {resources.device:q} > {log:q} 2>&1"


rule real_all:
    input:
        done=get_real_done,
    output:
        index=f"{RESULTS}/real/{{exp}}/index.json",
    log:
        f"{LOGS}/real/{{exp}}/index.log",
    localrule: True
    params:
        photos=lambda wildcards: list(real_photos()),
    run:
        write_real_index(params.photos, input.done, output.index, log[0])
