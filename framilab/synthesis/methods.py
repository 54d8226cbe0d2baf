"""The synthesis methods by name: one configuration (and synthesizer class) each, weights overridable."""
from __future__ import annotations

from typing import Any

from torch import nn

from ..checkpoint import TrainedModel
from .pool import Pool
from .synthesizer import GeneratorSynthesizer, InputSynthesizer, SynthConfig, Synthesizer

FRAMI = SynthConfig()

METHODS: dict[str, SynthConfig] = {
    # FRAMI: CE + BN + decision-masked adversarial + feature-invariant contrastive loss on time crops.
    "frami": FRAMI,
    "frami_no_fic": FRAMI.replace(fic=0.0, views=None),
    "frami_no_adv": FRAMI.replace(adv=0.0),
    # CMI-style: the same losses, but contrastive views are generic image crops resized back, with flips.
    "cmi": FRAMI.replace(views="resized_crop"),
    # DAFL/DFAD-style: no BN statistics or target labels; one-hot + activation + information entropy
    # (DAFL) and the adversarial term against the student (DFAD).
    "dafl": SynthConfig(ce=0.0, bn=0.0, adv=1.0, fic=0.0, views=None, one_hot=1.0, activation=0.1,
                        info_entropy=5.0, conditional=False),
    # DeepInversion: the inputs themselves, CE + BN + smoothness prior.
    "deepinversion": SynthConfig(kind="inputs", ce=1.0, bn=0.1, adv=0.0, fic=0.0, views=None, smooth=1.0,
                                 lr=0.1, steps=10),
}


def make_synthesizer(method: str, teacher: TrainedModel, pool: Pool, *, student: nn.Module | None = None,
                     batch_size: int = 64, frames: int | None = None, seed: int = 0, device: str = "cpu",
                     **weights: Any) -> Synthesizer:
    """A synthesizer for `method`, with any SynthConfig field overridden by `weights` (e.g. fic=1.0)."""
    if method not in METHODS:
        raise ValueError(f"unknown synthesis method {method!r}; choose one of {sorted(METHODS)}")
    config = METHODS[method].replace(**weights)
    cls = InputSynthesizer if config.kind == "inputs" else GeneratorSynthesizer
    return cls(teacher, config, pool, student=student, batch_size=batch_size, frames=frames, seed=seed, device=device)
