"""Rendering: rays of images, depth samplers, compositing and the chunked renderer."""

from pixelnerf.render.config import RendererConfig
from pixelnerf.render.plan import resolve_plan
from pixelnerf.render.rays import image_rays, pixel_directions
from pixelnerf.render.renderer import Renderer, alpha_composite

__all__ = ["Renderer", "RendererConfig", "alpha_composite", "image_rays", "pixel_directions",
           "resolve_plan"]
