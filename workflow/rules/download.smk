# Stage 1: data. Downloads (datasets and published weights) and the embedded demo dataset.


rule download:
    output:
        marker=f"{DATA}/.downloads/{{source}}.json",
    log:
        f"{LOGS}/download/{{source}}.log",
    benchmark:
        f"{BENCH}/download/{{source}}.tsv"
    params:
        # <data_root>, the folder above .downloads/ (the lint wants it from the output)
        data=lambda wildcards, output: Path(output.marker).parent.parent,
        checkpoints=CHECKPOINTS,
        sources=SOURCES_FILE,
        completion=lambda wildcards: source_completion_marker(wildcards.source),
    threads: stage_threads("light")
    resources:
        **stage_resources("light", runtime="download"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf download {wildcards.source:q} --data-root {params.data:q} "
        "--checkpoints-root {params.checkpoints:q} --sources {params.sources:q} "
        "> {log:q} 2>&1 && cp {params.completion:q} {output.marker:q}"


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
        **stage_resources("light"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf synth-demo {params.out:q} --config {params.config:q} > {log:q} 2>&1 "
        "&& cp {params.out:q}/synth_demo.json {output.marker:q}"


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
        format=lambda wildcards: dataset_cfg(wildcards.exp).format,
        root=lambda wildcards: dataset_root(wildcards.exp),
        prefix=lambda wildcards: list_prefix_option(wildcards.exp),
    threads: stage_threads("light")
    resources:
        **stage_resources("light", runtime="download"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf validate-data {params.format:q} {params.root:q} {params.prefix:q} "
        "> {output.report:q} 2> {log:q} || {{ head -n 1 {output.report:q} >&2; exit 1; }}"


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
    resources:
        **stage_resources("light"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf check-weights --config {params.config:q} --checkpoint {params.checkpoint:q} "
        "--out {output.record:q} > {log:q} 2>&1 || {{ tail -n 1 {log:q} >&2; exit 1; }}"
