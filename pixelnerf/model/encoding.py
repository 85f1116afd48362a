"""NeRF positional encoding with the published buffer layout (`_freqs`, `_phases`)."""

from __future__ import annotations

import math

import torch
from torch import nn

from pixelnerf.model.config import CodeConfig


class PositionalEncoding(nn.Module):
    """``x -> [x, sin(f_0 x), cos(f_0 x), sin(f_1 x), ...]`` with ``f_k = freq_factor * 2^k``.

    Cosines are computed as ``sin(y + pi/2)``, as the published code does, so that outputs
    agree with its checkpoints bit for bit as far as float32 allows.
    """

    def __init__(
        self,
        num_freqs: int = 6,
        d_in: int = 3,
        freq_factor: float = math.pi,
        include_input: bool = True,
    ) -> None:
        super().__init__()
        self.num_freqs = num_freqs
        self.d_in = d_in
        self.include_input = include_input
        self.d_out = 2 * num_freqs * d_in + (d_in if include_input else 0)
        freqs = freq_factor * 2.0 ** torch.arange(num_freqs, dtype=torch.float32)
        # Each frequency appears twice: once for the sine, once for the cosine (phase pi/2).
        self.register_buffer("_freqs", freqs.repeat_interleave(2).view(1, -1, 1))
        phases = torch.zeros(2 * num_freqs)
        phases[1::2] = math.pi / 2
        self.register_buffer("_phases", phases.view(1, -1, 1))

    @classmethod
    def from_config(cls, cfg: CodeConfig, d_in: int) -> PositionalEncoding:
        """Build from the published ``model.code`` section."""
        return cls(num_freqs=cfg.num_freqs, d_in=d_in, freq_factor=float(cfg.freq_factor),
                   include_input=cfg.include_input)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, d_in) -> (N, d_out)."""
        angles = torch.addcmul(self._phases, x.unsqueeze(1), self._freqs)  # (N, 2F, d_in)
        encoded = torch.sin(angles).reshape(x.shape[0], -1)
        return torch.cat((x, encoded), dim=-1) if self.include_input else encoded
