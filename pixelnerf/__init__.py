"""pixelNeRF: a reproducible, fast pipeline from data to the paper's tables."""

__version__ = "0.1.0"
