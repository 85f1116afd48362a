# Stage 3: weights. Training (a killed job, run again, resumes from its last checkpoint); with
# `train.weights: published` the download rule fetches the published weights instead.


rule train:
    input:
        data=get_dataset_ready,
        init=get_init_ready,
    output:
        done=f"{RESULTS}/{{exp}}/train/done.json",
    log:
        f"{LOGS}/train/{{exp}}.log",
    benchmark:
        f"{BENCH}/train/{{exp}}.tsv"
    params:
        config=get_experiment_file,
        digest=config_digest("train"),
        data=DATA,
        checkpoints=lambda wildcards: f"{CHECKPOINTS}/{wildcards.exp}",
        out=lambda wildcards: f"{RESULTS}/{wildcards.exp}/train",
        steps=lambda wildcards: train_steps(wildcards.exp),
        init=lambda wildcards: init_option(wildcards.exp),
    threads: stage_threads("train")
    resources:
        **train_resources(),
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads:q} pixelnerf train --config {params.config:q} "
        "--data-root {params.data:q} --checkpoints {params.checkpoints:q} "
        "--out {params.out:q} --device {resources.device:q} --weights train "
        "--steps {params.steps:q} --gpus {resources.processes:q} {params.init:q} > {log:q} 2>&1"
