"""One entry point for every data set: `load_dataset(name, root=None, *, split=None, folds=None, **options)`."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, Iterable

from .audiomnist import load_audiomnist
from .base import DATA_ENV, AudioDataset, Clip, DataWarning
from .esc50 import load_esc10, load_esc50
from .fsdd import load_fsdd
from .synthetic import CLASS_DESCRIPTIONS, load_synthetic
from .urbansound8k import load_urbansound8k

LOADERS: dict[str, Callable[..., AudioDataset]] = {
    "synthetic": load_synthetic,
    "fsdd": load_fsdd,
    "esc50": load_esc50,
    "esc10": load_esc10,
    "urbansound8k": load_urbansound8k,
    "audiomnist": load_audiomnist,
}


def valid_options(name: str) -> list[str]:
    """The keyword options a data set's loader accepts."""
    loader = LOADERS[name] if name != "esc10" else load_esc50
    params = inspect.signature(loader).parameters
    return [p for p, spec in params.items() if spec.kind == spec.KEYWORD_ONLY and p not in ("esc10",)]


def load_dataset(name: str, root: str | Path | None = None, *, split: str | None = None,
                 folds: Iterable[int] | None = None, **options: Any) -> AudioDataset:
    """Load data set `name` ('synthetic', 'fsdd', 'esc50', 'esc10', 'urbansound8k', 'audiomnist').

    `root` defaults to $FRAMILAB_DATA/<name>; `split` is 'train', 'test' or None for all;
    `folds` picks predefined folds instead (ESC-50, UrbanSound8K, AudioMNIST speaker folds).
    Other options (config, cache_dir, progress, test_fold, ...) go to the loader; unknown ones are refused.
    """
    if name not in LOADERS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(LOADERS)}")
    allowed = valid_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"{name} does not take option(s) {unknown}; valid options: {sorted(allowed)}")
    if folds is not None:
        if "folds" not in allowed:
            raise ValueError(f"{name} has no predefined folds; use split='train' or 'test'")
        options["folds"] = folds
    return LOADERS[name](root, split=split, **options)


def load_splits(name: str, root: str | Path | None = None, **options: Any) -> tuple[AudioDataset, AudioDataset]:
    """(train, test) by the data set's quick protocol: ESC folds 1-4 / 5, UrbanSound8K folds 1-9 / 10,
    AudioMNIST speaker folds 1-4 / 5, FSDD takes 5-49 / 0-4, synthetic its own train/test seeds."""
    return (load_dataset(name, root, split="train", **options), load_dataset(name, root, split="test", **options))


__all__ = ["AudioDataset", "CLASS_DESCRIPTIONS", "Clip", "DATA_ENV", "DataWarning", "LOADERS",
           "load_dataset", "load_splits", "valid_options"]
