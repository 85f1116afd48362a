"""Real photos of cars through the srn_car model (the published eval_real and preprocessing).

settings: the ``real`` config section; segment: Mask R-CNN car masks; normalize: the published
centring and scaling on white; photos: image, mask and ``--views`` reading; render: turntable
and stills; the command ``pixelnerf real`` is pixelnerf.commands.real.
"""

from pixelnerf.real.normalize import Ellipse, fit_ellipse, normalize_photo
from pixelnerf.real.photos import read_image, read_mask, read_view_poses, turntable_pose
from pixelnerf.real.render import RealResult, process_photos, render_turntable
from pixelnerf.real.segment import load_segmenter, pick_car_mask, segment_car
from pixelnerf.real.settings import RealSettings

__all__ = [
    "Ellipse",
    "RealResult",
    "RealSettings",
    "fit_ellipse",
    "load_segmenter",
    "normalize_photo",
    "pick_car_mask",
    "process_photos",
    "read_image",
    "read_mask",
    "read_view_poses",
    "render_turntable",
    "segment_car",
    "turntable_pose",
]
