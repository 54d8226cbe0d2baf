"""A generator from noise (and optionally a class) to normalised log-Mel spectrograms of any length.

A global code z sets the sample's character; it is stretched over time to the requested number
of frames and mixed with low-rate per-frame noise, then 1-D convolutions over time upsample it
4x and emit one channel per mel bin. So T can change from batch to batch with the same weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Outputs are soft-clipped to +-OUTPUT_RANGE: normalised log-Mel values rarely leave +-4.
OUTPUT_RANGE = 4.0


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, 3, padding=1), nn.BatchNorm1d(c_out), nn.LeakyReLU(0.2))


class Generator(nn.Module):
    """z (B, nz) [+ labels (B,)] -> x (B, n_mels, frames)."""

    def __init__(self, n_mels: int, n_classes: int, nz: int = 128, hidden: int = 128, base_frames: int = 8,
                 conditional: bool = True):
        super().__init__()
        self.n_mels, self.n_classes, self.nz, self.hidden = n_mels, n_classes, nz, hidden
        self.base_frames, self.conditional = base_frames, conditional
        self.label_embedding = nn.Embedding(n_classes, nz) if conditional else None
        self.project = nn.Linear(nz, hidden * base_frames)
        self.frame_noise = nn.Conv1d(nz // 4, hidden, 1)
        self.body = nn.Sequential(_block(hidden, hidden), nn.Upsample(scale_factor=2, mode="linear"),
                                  _block(hidden, hidden), nn.Upsample(scale_factor=2, mode="linear"),
                                  _block(hidden, hidden))
        self.out = nn.Conv1d(hidden, n_mels, 3, padding=1)

    def forward(self, z: torch.Tensor, frames: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditional:
            if labels is None:
                raise ValueError("this generator is class-conditional: pass labels")
            z = z * self.label_embedding(labels)
        coarse = -(-frames // 4)
        code = self.project(z).view(-1, self.hidden, self.base_frames)
        code = F.interpolate(code, size=coarse, mode="linear", align_corners=False)
        noise = torch.randn(z.shape[0], self.nz // 4, coarse, device=z.device)
        x = self.out(self.body(code + self.frame_noise(noise)))[..., :frames]
        return OUTPUT_RANGE * torch.tanh(x / OUTPUT_RANGE)

    def sample_z(self, batch: int, generator: torch.Generator | None = None,
                 device: str | torch.device = "cpu") -> torch.Tensor:
        return torch.randn(batch, self.nz, generator=generator).to(device)
