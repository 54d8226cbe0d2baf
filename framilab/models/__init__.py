"""Sound classifiers with statistics pooling, named presets, and their cost.

Every model maps a normalised log-Mel batch (B, F, T) to (logits, h, e); see classifier.py.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..features import FeatureConfig
from .classifier import StatsPoolingClassifier
from .pooling import AttentiveStatsPooling, StatsPooling
from .resnet import ResNet
from .tdnn import TDNN

FAMILIES = {"resnet": ResNet, "tdnn": TDNN}

# Teachers are what inversion runs forward and backward thousands of times: keep them CPU-cheap.
PRESETS: dict[str, dict[str, Any]] = {
    "resnet-teacher": {"family": "resnet", "widths": (24, 48, 96, 128), "strides": (2, 2, 2, 2), "embed_dim": 128},
    "resnet-student": {"family": "resnet", "widths": (8, 16, 32, 64), "strides": (2, 2, 2, 2), "embed_dim": 64},
    "tdnn-teacher": {"family": "tdnn", "width": 256, "channels": 512, "embed_dim": 128},
    "tdnn-student": {"family": "tdnn", "width": 64, "channels": 128, "embed_dim": 64},
}


def build_model(preset: str, n_mels: int, n_classes: int, **overrides: Any) -> StatsPoolingClassifier:
    """A model from a named preset; `overrides` change its arguments (e.g. pooling='attentive')."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {sorted(PRESETS)}")
    spec = {**PRESETS[preset], **overrides}
    family = FAMILIES[spec.pop("family")]
    try:
        return family(n_mels, n_classes, **spec)
    except TypeError as err:
        raise ValueError(f"bad arguments for preset {preset!r}: {err}") from None


def model_cost(model: torch.nn.Module, config: FeatureConfig) -> dict[str, float]:
    """Parameters and forward MFLOPs (multiply and add counted apart) per second of audio."""
    frames = max(config.frames(1.0), getattr(model, "min_frames", 1))
    x = torch.zeros(1, config.n_mels, frames, device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    seconds = frames / config.frames_per_second
    return {"params": sum(p.numel() for p in model.parameters()),
            "mflops_per_second_of_audio": counter.get_total_flops() / 1e6 / seconds}


__all__ = ["AttentiveStatsPooling", "FAMILIES", "PRESETS", "ResNet", "StatsPooling", "StatsPoolingClassifier",
           "TDNN", "build_model", "model_cost"]
