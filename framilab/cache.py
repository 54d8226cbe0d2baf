"""A disk cache of log-Mel features, so a second run never decodes (or synthesises) the same audio again.

An entry's key hashes what made the audio (a file's absolute path, size and modification time,
or the settings and code that generate it) together with the feature settings, so editing a file
or changing the config misses the cache instead of returning stale features.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import torch

from .features import FeatureConfig


# What torch.load raises on a truncated, damaged or foreign file.
LOAD_ERRORS = (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile)


def default_cache_dir() -> Path:
    """$FRAMILAB_CACHE, else ~/.cache/framilab/features."""
    env = os.environ.get("FRAMILAB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "framilab" / "features"


def atomic_save(obj: object, path: Path) -> None:
    """torch.save to a temporary file beside `path`, then rename: a killed writer leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FeatureCache:
    """Maps (audio file, extra settings, FeatureConfig) to a cached tensor under `root`."""

    def __init__(self, root: str | Path | None, config: FeatureConfig):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.config = config
        self.hits = 0
        self.misses = 0

    def key(self, path: Path, extra: str = "") -> str:
        stat = path.stat()
        return self.source_key(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{extra}")

    def source_key(self, source: str) -> str:
        """The key of features made from `source`, a text that names everything the audio depends on."""
        return hashlib.sha1(f"{source}|{self.config.key()}".encode()).hexdigest()

    def get(self, path: Path, compute: Callable[[], torch.Tensor], extra: str = "") -> torch.Tensor:
        """The cached tensor for `path`, or `compute()` stored under its key."""
        return self.fetch(self.key(path, extra), compute)

    def fetch(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The tensor cached under `key`, or `compute()` stored there."""
        entry = self.root / key[:2] / f"{key}.pt"
        if entry.is_file():
            try:
                value = torch.load(entry, weights_only=True)
                self.hits += 1
                return value
            except LOAD_ERRORS:
                entry.unlink(missing_ok=True)  # a damaged entry is recomputed, never trusted
        value = compute()
        self.misses += 1
        atomic_save(value.clone(), entry)
        return value
