# Stage 1: data. Downloads (datasets and published weights) and the embedded demo dataset.


rule download:
    output:
        marker=f"{DATA}/.downloads/{{source}}.json",
    log:
        f"{LOGS}/download/{{source}}.log",
    benchmark:
        f"{BENCH}/download/{{source}}.tsv"
    params:
        data=DATA,
        checkpoints=CHECKPOINTS,
        sources=SOURCES_FILE,
        completion=lambda wildcards: source_completion_marker(wildcards.source),
    threads: stage_threads("light")
    resources:
        gpu=0,
        mem_mb=stage_mem("light"),
        runtime=stage_runtime("download"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf download {wildcards.source} --data-root {params.data} "
        "--checkpoints-root {params.checkpoints} --sources {params.sources} > {log} 2>&1 "
        "&& cp {params.completion:q} {output.marker}"


rule synth_demo:
    output:
        marker=synth_marker("{exp}"),
    log:
        f"{LOGS}/synth_demo/{{exp}}.log",
    benchmark:
        f"{BENCH}/synth_demo/{{exp}}.tsv"
    params:
        config=get_experiment_file,
        digest=config_digest("synth"),
        out=lambda wildcards: dataset_root(wildcards.exp),
    threads: stage_threads("light")
    resources:
        gpu=0,
        mem_mb=stage_mem("light"),
        runtime=stage_runtime("light"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf synth-demo {params.out} --config {params.config} > {log} 2>&1 "
        "&& cp {params.out}/synth_demo.json {output.marker}"


rule validate_data:
    # Every bad file of the experiment's dataset, listed in one pass: an optional target,
    # and the check of data used in place (`in_place`), whose first problem stops the run.
    input:
        data=get_fetched,
    output:
        report=f"{RESULTS}/{{exp}}/validate-data.txt",
    log:
        f"{LOGS}/validate_data/{{exp}}.log",
    benchmark:
        f"{BENCH}/validate_data/{{exp}}.tsv"
    params:
        format=lambda wildcards: dataset_cfg(wildcards.exp)["format"],
        root=lambda wildcards: dataset_root(wildcards.exp),
        prefix=lambda wildcards: list_prefix_option(wildcards.exp),
    threads: stage_threads("light")
    conda:
        CONDA_ENV
    resources:
        gpu=0,
        mem_mb=stage_mem("light"),
        runtime=stage_runtime("download"),
    shell:
        "pixelnerf validate-data {params.format} {params.root:q} {params.prefix} "
        "> {output.report} 2> {log} || {{ head -n 1 {output.report} >&2; exit 1; }}"


rule check_weights:
    # Published weights a user already has (`in_place`): loaded strictly once, before use.
    output:
        record=f"{RESULTS}/{{exp}}/weights-check.json",
    log:
        f"{LOGS}/check_weights/{{exp}}.log",
    params:
        config=get_experiment_file,
        checkpoint=lambda wildcards: published_checkpoint(wildcards.exp),
    threads: stage_threads("light")
    conda:
        CONDA_ENV
    resources:
        gpu=0,
        mem_mb=stage_mem("light"),
        runtime=stage_runtime("light"),
    shell:
        "pixelnerf check-weights --config {params.config} --checkpoint {params.checkpoint:q} "
        "--out {output.record} > {log} 2>&1 || {{ tail -n 1 {log} >&2; exit 1; }}"
