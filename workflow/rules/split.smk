# Stage 2: split lists. The unseen-category lists (gen_*.lst, spec section 6) for dvr_gen.


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
        gpu=0,
        mem_mb=stage_mem("light"),
        runtime=stage_runtime("light"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf split --config {params.config} --data-root {params.data} "
        "--out {output.marker} > {log} 2>&1"
