"""How the table total moves with each choice of the evaluation protocol.

One row is the experiment's own protocol (the reference: its table's total, from the same
metrics files); every other row changes one choice and gives the paired difference to the
reference over objects (:mod:`pixelnerf.eval.paired`). Modules, in call order:
:mod:`.build` (what is computed for an experiment), :mod:`.choices` (the variants),
:mod:`.scoring` (scoring images one way or another, with the LPIPS seam :mod:`.lpips_seam`),
:mod:`.rescore` (variants that re-score the reference's PNGs), :mod:`.rerender` (variants
that change the rendering, on a seeded sample of objects and views), :mod:`.table` (rows,
CSV, Markdown) and :mod:`.plot`.

The variants that render again run on a seeded sample (``--objects``, ``--views``: every
object of the demo, 3 target views each), the reference scored on the same views; those
that only re-score run over every object and view.
"""
