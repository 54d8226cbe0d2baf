"""Per-data-set training recipes: the settings the benchmarks use and the CLI falls back on.

Each was chosen by runs on a 2-core CPU (see the teacher benchmark) to reach the target
accuracy within about 10 CPU-minutes with the default teacher preset.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .data import AudioDataset, load_splits
from .train import TrainConfig, train_classifier

DEFAULT_TEACHER = "resnet-teacher"
DEFAULT_STUDENT = "resnet-student"

RECIPES: dict[str, dict[str, Any]] = {
    "synthetic": {"epochs": 25, "batch_size": 64, "lr": 3e-3, "crop_frames": 80},
    "fsdd": {"epochs": 15, "batch_size": 64, "lr": 3e-3, "crop_frames": 80},
    "audiomnist": {"epochs": 15, "batch_size": 64, "lr": 3e-3, "crop_frames": 80},
    "esc10": {"epochs": 60, "batch_size": 32, "lr": 3e-3, "crop_frames": 150, "mixup_alpha": 0.2},
    "esc50": {"epochs": 60, "batch_size": 32, "lr": 3e-3, "crop_frames": 150, "mixup_alpha": 0.2},
    "urbansound8k": {"epochs": 30, "batch_size": 64, "lr": 3e-3, "crop_frames": 150},
}


def recipe(dataset: str, **overrides: Any) -> TrainConfig:
    """The TrainConfig for `dataset`, with `overrides` (None values are ignored)."""
    if dataset not in RECIPES:
        raise ValueError(f"no training recipe for {dataset!r}; known: {sorted(RECIPES)}")
    return TrainConfig.from_dict({**RECIPES[dataset], **{k: v for k, v in overrides.items() if v is not None}})


def train_by_recipe(preset: str, dataset: str, run_dir: str | Path,
                    splits: tuple[AudioDataset, AudioDataset] | None = None, *, seed: int = 0,
                    **options: Any) -> dict[str, Any]:
    """Train `preset` on `dataset` with the data set's recipe (train_classifier's `options` pass through);
    `splits` (train, test) spares loading the data again when several models train on it."""
    train, test = splits if splits is not None else load_splits(dataset, progress=False)
    return train_classifier(preset, train, test, run_dir, recipe(dataset, seed=seed), **options)
