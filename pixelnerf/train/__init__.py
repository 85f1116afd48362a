"""Training: the published procedure, resumable to the step.

Modules: ``config`` (the ``train`` section), ``sampling`` (objects, views, rays, jitter),
``batches`` (decoded objects per step), ``objective`` (loss), ``checkpoint`` (save and
resume), ``evaluate`` (validation loss), ``visualize`` (progress pictures), ``monitor``
(CSV, TensorBoard, progress bar), ``distributed`` (data-parallel ranks), ``launch``
(``--gpus N``: torchrun on one node), ``loop`` (the run); the command ``pixelnerf train`` is
pixelnerf.commands.train.
"""

from pixelnerf.train.config import TrainConfig

__all__ = ["TrainConfig"]
