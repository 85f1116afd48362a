"""The evaluation chain: render the test views, score them, reduce them to the paper's tables.

Modules: ``config`` (the ``eval`` section, EvalConfig), ``protocol`` (source and target views
per object, shards), ``inference`` (model, cameras, split, render_view_passes: shared with the
bench, videos and real photos), ``records`` (done.json and the shard manifests: the only
reader and writer), ``render`` (one shard: select, skip, render, write), ``metrics``
(PSNR, SSIM, LPIPS per image), ``scoring`` (one shard's objects against ground truth),
``object_scores`` (the per-object CSV), ``tables`` (the table beside the paper's),
``approx`` (the approximate evaluation), ``extra_outputs`` (the ``eval.outputs`` files beside
the renders). Commands: pixelnerf.commands.
"""
