"""Videos of novel views along the published camera paths (the published gen_video).

paths: camera paths (360-degree loop, DTU spline); settings: the ``video`` config section;
render: frames through the render step's code path; writer: mp4 in and out; the command
``pixelnerf video`` is pixelnerf.commands.video.
"""

from pixelnerf.video.paths import dtu_spline_poses, loop_poses, orbit_pose
from pixelnerf.video.render import VideoFrames, make_object_video, render_object_video, render_path
from pixelnerf.video.settings import VideoSettings
from pixelnerf.video.writer import read_mp4, write_mp4

__all__ = [
    "VideoFrames",
    "VideoSettings",
    "dtu_spline_poses",
    "loop_poses",
    "make_object_video",
    "orbit_pose",
    "read_mp4",
    "render_object_video",
    "render_path",
    "write_mp4",
]
