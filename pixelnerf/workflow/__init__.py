"""The workflow's logic, apart from Snakemake's syntax (the Snakefile and workflow/rules hold
only the glue).

Modules: ``plan`` (what a run makes and from what: experiments, paths, targets, shards,
config digests, resources), ``photos`` (the folder of real photographs), ``glue`` (a
:class:`~pixelnerf.errors.PipelineError` met while Snakemake builds its DAG, as one line),
``run`` (``pixelnerf run``: one Snakemake run per folder, stale locks cleared),
``gpu_slots`` (a local GPU job's claim on free GPUs).
"""
