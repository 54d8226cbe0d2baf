"""Small measurements on trained models that the notebooks show: how much an embedding depends on length."""
from __future__ import annotations

import torch

from .features import Normalizer
from .models import StatsPoolingClassifier


@torch.no_grad()
def length_invariance(model: StatsPoolingClassifier, normalizer: Normalizer, spec: torch.Tensor,
                      other: torch.Tensor | None = None) -> dict[str, float]:
    """Cosine similarity between the embedding of one clip (n_mels, T) and of the same clip made longer or shorter.

    'repeated': the clip played twice in a row (2T frames); 'first_half' / 'second_half': each half
    alone. Statistics pooling keeps the first near 1; halves stay close where the sound is spread
    over the clip. 'other_clip' (when `other` is given, e.g. a clip of another class) is the reference.
    """
    model.eval()
    x = normalizer(spec.unsqueeze(0))
    half = x.shape[-1] // 2
    _, _, e = model(x)
    views = {"repeated": x.repeat(1, 1, 2), "first_half": x[..., :half], "second_half": x[..., half:]}
    if other is not None:
        views["other_clip"] = normalizer(other.unsqueeze(0))
    out = {}
    for name, view in views.items():
        if view.shape[-1] < model.min_frames:
            continue
        out[name] = float(torch.cosine_similarity(e, model(view)[2]).item())
    return out
