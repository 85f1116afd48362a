# Paired comparison of two experiments: per category and in total, the mean over objects
# of B - A with a seeded bootstrap interval (`pixelnerf compare`). Both runs must hold the
# same objects and views; `pixelnerf compare --common` on the command line compares the
# common part of runs that differ.
from types import SimpleNamespace


def compare_metrics(side):
    """An input function: every shard CSV of experiment ``side`` (wildcard a or b)."""

    def files(wildcards):
        exp = getattr(wildcards, side)
        experiment(exp)  # an unknown experiment stops here, naming the file
        return get_shard_metrics(SimpleNamespace(exp=exp))

    return files


rule compare:
    input:
        a=compare_metrics("a"),
        b=compare_metrics("b"),
    output:
        csv=report(
            f"{RESULTS}/compare/{{a}}__{{b}}.csv",
            caption="../report/compare.rst",
            category="Comparisons",
            labels={"comparison": "{b} - {a}", "file": "table (CSV)"},
        ),
        md=f"{RESULTS}/compare/{{a}}__{{b}}.md",
    log:
        f"{LOGS}/compare/{{a}}__{{b}}.log",
    params:
        results=RESULTS,
    # experiment names: no double underscore, so that `a__b` splits one way only
    wildcard_constraints:
        a="[A-Za-z0-9]+(_[A-Za-z0-9]+)*",
        b="[A-Za-z0-9]+(_[A-Za-z0-9]+)*",
    localrule: True
    threads: stage_threads("light")
    resources:
        **stage_resources("light"),
    conda:
        CONDA_ENV
    shell:
        "pixelnerf compare {wildcards.a:q} {wildcards.b:q} --results {params.results:q} "
        "--a-metrics {input.a:q} --b-metrics {input.b:q} "
        "--out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"
