"""TDNN / x-vector encoder: 1-D dilated convolutions over time with batch norm (unpadded, as in x-vectors)."""
from __future__ import annotations

from torch import nn

from .classifier import StatsPoolingClassifier

# (kernel, dilation) of the x-vector frame layers; unpadded, they use 14 frames of context.
FRAME_LAYERS = ((5, 1), (3, 2), (3, 3), (1, 1))


def _tdnn_layer(c_in: int, c_out: int, kernel: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, kernel, dilation=dilation, bias=False),
                         nn.BatchNorm1d(c_out), nn.ReLU())


class TDNN(StatsPoolingClassifier):
    """x-vector-style classifier: h has `channels` channels and T - 14 frames."""

    family = "tdnn"

    def __init__(self, n_mels: int, n_classes: int, width: int = 256, channels: int = 512,
                 embed_dim: int = 128, pooling: str = "stats"):
        layers, c_in = [], n_mels
        for kernel, dilation in FRAME_LAYERS:
            layers.append(_tdnn_layer(c_in, width, kernel, dilation))
            c_in = width
        layers.append(_tdnn_layer(width, channels, 1, 1))
        context = sum((k - 1) * d for k, d in FRAME_LAYERS)
        super().__init__(n_mels, n_classes, nn.Sequential(*layers), channels, embed_dim,
                         min_frames=context + 2, pooling=pooling)
