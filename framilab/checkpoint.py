"""Self-describing checkpoints: written atomically, checked for format and version on load.

A checkpoint holds everything needed to rebuild its model and front end (preset, model
arguments, FeatureConfig, normalisation statistics, class names), so later stages start
from the file alone, with no access to the training data.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .cache import LOAD_ERRORS, atomic_save
from .features import FeatureConfig, Normalizer
from .models import StatsPoolingClassifier, build_model

FORMAT = "framilab-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable framilab checkpoint; the message says why and what to do."""


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    """Save `payload` with the format tag and library version, atomically."""
    atomic_save({"format": FORMAT, "format_version": FORMAT_VERSION, "framilab_version": __version__, **payload},
                Path(path))


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Load and check a checkpoint; `kind` (e.g. 'classifier') must match the stored kind."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except LOAD_ERRORS as err:
        raise CheckpointError(f"{path}: corrupted or not a torch file ({type(err).__name__}: {err}); "
                              "re-run the stage that wrote it") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a framilab checkpoint (no '{FORMAT}' tag)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload.get('format_version')} written by framilab "
            f"{payload.get('framilab_version')}; this framilab {__version__} reads format {FORMAT_VERSION}. "
            "Re-run the stage with this version, or install the version that wrote it")
    if kind is not None and payload.get("kind") != kind:
        raise CheckpointError(f"{path}: holds a {payload.get('kind')!r}, not a {kind!r}")
    return payload


@dataclass
class TrainedModel:
    """A model with the front end it was trained on: what inversion and distillation start from."""

    model: StatsPoolingClassifier
    normalizer: Normalizer
    feature_config: FeatureConfig
    classes: list[str]
    preset: str
    dataset: str
    metrics: dict[str, Any]
    path: Path | None = None

    def fingerprint(self) -> str:
        """A short hash of the weights, so a pool or student can tell which teacher made it."""
        digest = hashlib.sha1()
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]


def model_payload(model: StatsPoolingClassifier, preset: str, model_args: dict[str, Any], normalizer: Normalizer,
                  feature_config: FeatureConfig, classes: list[str], dataset: str) -> dict[str, Any]:
    """The part of a checkpoint that rebuilds a model and its front end."""
    return {"kind": "classifier", "preset": preset, "model_args": model_args, "model_state": model.state_dict(),
            "normalizer_state": normalizer.state_dict(), "feature_config": feature_config.to_dict(),
            "classes": list(classes), "dataset": dataset}


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Rebuild a trained classifier (teacher or student) from its checkpoint alone, in eval mode."""
    payload = load_checkpoint(path, kind="classifier")
    config = FeatureConfig.from_dict(payload["feature_config"])
    model = build_model(payload["preset"], config.n_mels, len(payload["classes"]), **payload["model_args"])
    model.load_state_dict(payload["model_state"])
    norm_state = payload["normalizer_state"]
    normalizer = Normalizer(norm_state["mean"], norm_state["std"])
    return TrainedModel(model.to(device).eval(), normalizer.to(device), config, payload["classes"],
                        payload["preset"], payload["dataset"], payload.get("metrics", {}), Path(path))


load_teacher = load_trained
