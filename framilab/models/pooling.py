"""Statistics pooling: frame-level hidden states (B, C, T') -> one vector per clip (B, 2C).

Mean and standard deviation over time do not depend on how many frames there are, which is
what lets FRAMI's contrastive loss compare crops of different lengths of the same sample.
"""
from __future__ import annotations

import torch
from torch import nn

STD_EPS = 1e-5


class StatsPooling(nn.Module):
    """Concatenated mean and standard deviation over the time axis."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        mean = h.mean(dim=-1)
        std = (h.var(dim=-1, unbiased=False) + STD_EPS).sqrt()
        return torch.cat([mean, std], dim=-1)


class AttentiveStatsPooling(nn.Module):
    """Mean and std weighted by a learned per-channel attention over frames (ECAPA-style)."""

    def __init__(self, channels: int, hidden: int = 64):
        super().__init__()
        self.attention = nn.Sequential(
            nn.Conv1d(channels, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, channels, 1)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.attention(h), dim=-1)
        mean = (weights * h).sum(dim=-1)
        var = (weights * h * h).sum(dim=-1) - mean * mean
        return torch.cat([mean, (var.clamp_min(0) + STD_EPS).sqrt()], dim=-1)


def make_pooling(kind: str, channels: int) -> nn.Module:
    if kind == "stats":
        return StatsPooling()
    if kind == "attentive":
        return AttentiveStatsPooling(channels)
    raise ValueError(f"unknown pooling {kind!r}; choose 'stats' or 'attentive'")
