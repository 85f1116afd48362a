"""The pixelNeRF network: encoder, positional encoding, ResnetFC MLPs, checkpoints."""

from pixelnerf.model.checkpoint import load_checkpoint, read_state_dict
from pixelnerf.model.pixelnerf import PixelNeRF, SourceViews

__all__ = ["PixelNeRF", "SourceViews", "load_checkpoint", "read_state_dict"]
