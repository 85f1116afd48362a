# Stage 2: split lists. The unseen-category lists (gen_*.lst) for the dvr_gen format.


rule split:
    input:
        data=get_download_ready,
    output:
        marker=f"{RESULTS}/{{exp}}/split/done.json",
    log:
        f"{LOGS}/split/{{exp}}.log",
    benchmark:
        f"{BENCH}/split/{{exp}}.tsv"
    params:
        config=get_experiment_file,
        digest=config_digest("split"),
        data=DATA,
    threads: stage_threads("light")
    resources:
        **stage_resources("light"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf split --config {params.config:q} --data-root {params.data:q} "
        "--out {output.marker:q} > {log:q} 2>&1"
