"""The shape every framilab model shares: encoder -> statistics pooling -> embedding -> logits.

Subclasses only build the frame-level encoder; this class owns pooling, the embedding, the
input checks and the `(logits, h, e)` contract the inversion and distillation stages rely on.
"""
from __future__ import annotations

import torch
from torch import nn

from .pooling import make_pooling


class StatsPoolingClassifier(nn.Module):
    """Maps normalised log-Mel batches (B, F, T) to (logits, h, e).

    h: frame-level hidden states before pooling, (B, C, T'); e: the embedding after pooling
    (a linear layer + batch norm + ReLU on [mean, std]), (B, embed_dim).
    """

    family = "base"

    def __init__(self, n_mels: int, n_classes: int, encoder: nn.Module, channels: int, embed_dim: int,
                 min_frames: int, pooling: str = "stats"):
        super().__init__()
        self.n_mels = n_mels
        self.n_classes = n_classes
        self.channels = channels
        self.embed_dim = embed_dim
        self.min_frames = min_frames
        self.encoder = encoder
        self.pool = make_pooling(pooling, channels)
        self.embedding = nn.Sequential(nn.Linear(2 * channels, embed_dim), nn.BatchNorm1d(embed_dim), nn.ReLU())
        self.classifier = nn.Linear(embed_dim, n_classes)

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != self.n_mels:
            raise ValueError(f"expected a log-Mel batch (B, {self.n_mels}, T); got shape {tuple(x.shape)}")
        if x.shape[-1] < self.min_frames:
            raise ValueError(f"input has {x.shape[-1]} frames but this model needs at least {self.min_frames}")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.check_input(x)
        h = self.encoder(x)
        e = self.embedding(self.pool(h))
        return self.classifier(e), h, e
