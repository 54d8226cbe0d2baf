"""The log-Mel front end: its configuration, the transform, normalisation and Griffin-Lim inversion.

Every model, pool and checkpoint stores the FeatureConfig it was made with, so a spectrogram
can always be turned back into sound and a teacher can be rebuilt without its training data.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable

import torch
import torchaudio.functional as AF
import torchaudio.transforms as T
from torch import nn

from .config import check_fields

# Bump when the feature computation changes, so old cache entries are not reused.
FEATURE_VERSION = 1


@dataclass(frozen=True)
class FeatureConfig:
    """Log-Mel settings; `clip_seconds` is the length every clip is padded or cropped to."""

    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float | None = None
    clip_seconds: float = 2.0
    top_db: float = 80.0

    def __post_init__(self) -> None:
        nyquist = self.sample_rate / 2
        if self.f_max is not None and not self.f_min < self.f_max <= nyquist:
            raise ValueError(f"need f_min < f_max <= sample_rate/2 = {nyquist}; got {self.f_min}, {self.f_max}")
        if self.hop_length <= 0 or self.n_fft <= 0 or self.n_mels <= 0 or self.clip_seconds <= 0:
            raise ValueError(f"n_fft, hop_length, n_mels and clip_seconds must be positive: {self}")

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def frames(self, seconds: float | None = None) -> int:
        """Number of frames the transform gives for `seconds` of audio (default: one clip)."""
        n = self.clip_samples if seconds is None else int(round(seconds * self.sample_rate))
        return n // self.hop_length + 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "FeatureConfig":
        check_fields(cls, values, "FeatureConfig fields")
        return cls(**values)

    def replace(self, **changes: Any) -> "FeatureConfig":
        return dataclasses.replace(self, **changes)

    def key(self) -> str:
        """A short stable hash of the settings (and FEATURE_VERSION), for cache keys."""
        text = json.dumps({**self.to_dict(), "version": FEATURE_VERSION}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


class LogMel(nn.Module):
    """Waveform (..., N) -> log-Mel power spectrogram in dB (..., n_mels, frames)."""

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.config = config
        self.mel = T.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            f_min=config.f_min,
            f_max=config.f_max,
            n_mels=config.n_mels,
            power=2.0,
        )
        self.to_db = T.AmplitudeToDB(stype="power", top_db=config.top_db)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.to_db(self.mel(wav))


@lru_cache(maxsize=8)
def _log_mel_module(config: FeatureConfig) -> LogMel:
    return LogMel(config)


def log_mel(wav: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Log-Mel spectrogram (dB) of one waveform or a batch, with the transform built once per config."""
    with torch.no_grad():
        return _log_mel_module(config)(wav)


class Normalizer(nn.Module):
    """Per-mel-bin standardisation; its statistics come from a training split only."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.reshape(-1, 1).float())
        self.register_buffer("std", std.reshape(-1, 1).float().clamp_min(1e-3))

    @classmethod
    def fit(cls, spectrograms: Iterable[torch.Tensor]) -> "Normalizer":
        """Mean and std per mel bin over every frame of `spectrograms` (each (n_mels, T))."""
        total, total_sq, count = None, None, 0
        for spec in spectrograms:
            spec = spec.double()
            s, sq = spec.sum(dim=-1), (spec * spec).sum(dim=-1)
            total = s if total is None else total + s
            total_sq = sq if total_sq is None else total_sq + sq
            count += spec.shape[-1]
        if count == 0:
            raise ValueError("cannot fit a Normalizer on no spectrograms: the training split is empty")
        mean = total / count
        std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
        return cls(mean, std)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return (spec - self.mean) / self.std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


def mel_to_audio(spec_db: torch.Tensor, config: FeatureConfig, n_iter: int = 32) -> torch.Tensor:
    """Invert a log-Mel spectrogram in dB (n_mels, T) or (B, n_mels, T) to a waveform by Griffin-Lim.

    Works for real and generated spectrograms alike (denormalise generated ones first), so any
    sample can be listened to. Returns (N,) or (B, N) float32 at config.sample_rate.
    """
    if spec_db.shape[-2] != config.n_mels:
        raise ValueError(f"spectrogram has {spec_db.shape[-2]} mel bins but the config says {config.n_mels}")
    power = AF.DB_to_amplitude(spec_db.detach().float(), ref=1.0, power=1.0)
    inverse_mel = T.InverseMelScale(
        n_stft=config.n_fft // 2 + 1,
        n_mels=config.n_mels,
        sample_rate=config.sample_rate,
        f_min=config.f_min,
        f_max=config.f_max,
    )
    griffin_lim = T.GriffinLim(n_fft=config.n_fft, hop_length=config.hop_length, power=2.0, n_iter=n_iter)
    with torch.no_grad():
        linear = inverse_mel(power).clamp_min(0)
        return griffin_lim(linear)
