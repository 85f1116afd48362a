# Paired comparison of two experiments: per category and in total, the mean over objects
# of B - A with a seeded bootstrap interval (`pixelnerf compare`). Both runs must hold the
# same objects and views; `pixelnerf compare --common` on the command line compares the
# common part of runs that differ.
rule compare:
    input:
        a=get_compare_metrics_a,
        b=get_compare_metrics_b,
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
        "pixelnerf compare {wildcards.a:q} {wildcards.b:q} "
        "--a-metrics {input.a:q} --b-metrics {input.b:q} "
        "--out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"
