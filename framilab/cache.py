"""A disk cache of log-Mel features, so a second run never decodes (or synthesises) the same audio again.

An entry's key hashes what made the audio (a file's absolute path, size, modification time and change
time, or the settings and code that generate it) together with the feature settings, so editing a file
or changing the config misses the cache instead of returning stale features. The change time (ctime) is
set by the kernel on every write and cannot be set back (a tool that restores the modification time
moves it), so a file rewritten in place with its size and mtime restored still misses. A cache folder
that cannot be written is a warning, and the data loads without it.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Callable

import torch

from .features import FeatureConfig


# What torch.load raises on a truncated, damaged or foreign file.
LOAD_ERRORS = (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile)


class CacheWarning(UserWarning):
    """The feature cache cannot be used; features are computed without it."""


def default_cache_dir() -> Path:
    """$FRAMILAB_CACHE, else ~/.cache/framilab/features (a leading ~ is the home folder)."""
    env = os.environ.get("FRAMILAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "framilab" / "features"


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
        self.root: Path | None = Path(root).expanduser() if root is not None else default_cache_dir()
        self.config = config
        self.hits = 0
        self.misses = 0

    def key(self, path: Path, extra: str = "") -> str:
        stat = path.stat()
        return self.source_key(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}|{extra}")

    def source_key(self, source: str) -> str:
        """The key of features made from `source`, a text that names everything the audio depends on."""
        return hashlib.sha1(f"{source}|{self.config.key()}".encode()).hexdigest()

    def get(self, path: Path, compute: Callable[[], torch.Tensor], extra: str = "") -> torch.Tensor:
        """The cached tensor for `path`, or `compute()` stored under its key."""
        return self.fetch(self.key(path, extra), compute)

    def fetch(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The tensor cached under `key`, or `compute()` stored there (if the cache can be written)."""
        if self.root is None:
            self.misses += 1
            return compute()
        entry = self.root / key[:2] / f"{key}.pt"
        if entry.is_file():
            try:
                value = torch.load(entry, weights_only=True)
                self.hits += 1
                return value
            except LOAD_ERRORS:
                with contextlib.suppress(OSError):
                    entry.unlink(missing_ok=True)  # a damaged entry is recomputed, never trusted
        value = compute()
        self.misses += 1
        try:
            atomic_save(value.clone(), entry)
        except OSError as err:
            warnings.warn(f"feature cache {self.root} cannot be written ({err}); going on without it. Point "
                          "FRAMILAB_CACHE (or cache_dir) at a writable folder to keep features between runs",
                          CacheWarning, stacklevel=3)
            self.root = None
        return value
