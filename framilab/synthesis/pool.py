"""The data pool: synthesised spectrograms stored as float shards under the run folder.

Each shard holds one synthesised batch (x in normalised log-Mel units, float32; target labels;
teacher logits; the round and method). meta.json records the teacher's fingerprint and front end,
so distillation can refuse a pool made from another teacher, and a stopped run resumes by
appending shards. Samples are never quantised to 8 bits: spectrogram values are not pixels.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from ..cache import LOAD_ERRORS, atomic_save
from ..features import Normalizer


class PoolError(ValueError):
    """A pool that cannot be used: empty, from another teacher, or damaged."""


class Pool:
    """Shards of synthesised samples in `root` (normally run_dir/pool)."""

    def __init__(self, root: str | Path, meta: dict[str, Any] | None = None):
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if meta_path.is_file():
            self.meta = json.loads(meta_path.read_text())
            if meta is not None:
                self.check_teacher(meta.get("teacher_fingerprint"))
        elif meta is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            meta_path.write_text(json.dumps(meta, indent=2))
            self.meta = meta
        else:
            raise PoolError(f"{self.root} holds no pool (no meta.json): run the inversion stage first")
        self.shards: list[dict[str, torch.Tensor]] = [self._load(p) for p in self.shard_paths()]
        self._joined: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def check_teacher(self, fingerprint: str | None) -> None:
        """Refuse a pool synthesised from another teacher than the one with `fingerprint`."""
        if self.meta.get("teacher_fingerprint") != fingerprint:
            raise PoolError(f"{self.root} holds samples from teacher {self.meta.get('teacher_fingerprint')}, "
                            f"not {fingerprint}: use a new run_dir or delete the pool")

    def shard_paths(self) -> list[Path]:
        return sorted(self.root.glob("shard_*.pt"))

    def _load(self, path: Path) -> dict[str, torch.Tensor]:
        try:
            return torch.load(path, weights_only=True)
        except LOAD_ERRORS as err:
            raise PoolError(f"{path}: damaged pool shard ({err}); delete it and resume the inversion run") from None

    def add(self, x: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor, round_index: int) -> None:
        shard = {"x": x.detach().float().cpu(), "targets": targets.detach().cpu(),
                 "teacher_logits": teacher_logits.detach().float().cpu(), "round": torch.tensor(round_index)}
        atomic_save(shard, self.root / f"shard_{len(self.shards):05d}.pt")
        self.shards.append(shard)
        self._joined = None

    def __len__(self) -> int:
        return sum(len(s["targets"]) for s in self.shards)

    def truncate(self, n_shards: int) -> None:
        """Drop shards past `n_shards` (written after the checkpoint a resumed run starts from)."""
        for path in self.shard_paths()[n_shards:]:
            path.unlink()
        self.shards = self.shards[:n_shards]
        self._joined = None

    def fork(self, root: str | Path, n_shards: int | None = None) -> "Pool":
        """A new pool in `root` (replacing one there) that starts with this pool's first `n_shards` shards
        (all by default), linked where the file system allows, else copied; this pool is only read."""
        root = Path(root)
        if root.resolve() == self.root.resolve():
            raise PoolError(f"cannot fork {self.root} into itself: give the new pool a folder of its own")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        for path in self.shard_paths()[:n_shards]:
            try:
                os.link(path, root / path.name)
            except OSError:
                shutil.copy2(path, root / path.name)
        (root / "meta.json").write_text(json.dumps(self.meta, indent=2))
        return Pool(root)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All samples (x, targets, teacher logits), each cut from its start to the shortest shard's length.

        Joined once and kept until the next `add`, since distillation samples from it every step.
        """
        if not self.shards:
            raise PoolError(f"{self.root} is empty: synthesise at least one round first")
        if self._joined is None:
            frames = min(s["x"].shape[-1] for s in self.shards)
            self._joined = (torch.cat([s["x"][..., :frames] for s in self.shards]),
                            torch.cat([s["targets"] for s in self.shards]),
                            torch.cat([s["teacher_logits"] for s in self.shards]))
        return self._joined

    def spectrograms(self, normalizer: Normalizer) -> tuple[torch.Tensor, torch.Tensor]:
        """All samples as log-Mel spectrograms in dB (the teacher's input normalisation undone) with their
        target labels: what figures draw and Griffin-Lim plays."""
        x, targets, _ = self.tensors()
        return normalizer.denormalize(x), targets

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`n` random samples (x, targets, teacher logits) on `device`, cut to the shortest chosen length.

        The pool itself stays in host memory (it grows every round); only the batch moves.
        """
        x, y, logits = self.tensors()
        idx = torch.randperm(len(y), generator=generator)[:n]
        return x[idx].to(device), y[idx].to(device), logits[idx].to(device)
