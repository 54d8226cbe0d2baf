"""Reading audio files into mono waveforms at one sample rate, and fitting them to a length.

torchaudio.load needs torchcodec, which is not available everywhere; soundfile decodes
WAV/FLAC/OGG itself, and torchaudio only resamples.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

# Peak amplitude below which a clip counts as silent (about -100 dBFS).
SILENCE_PEAK = 1e-5

LengthMode = Literal["end", "center", "repeat"]
LENGTH_MODES: tuple[str, ...] = ("end", "center", "repeat")


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and what is wrong."""


def read_audio(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Decode `path`, mix to mono and resample to `sample_rate`; returns a float32 (N,) tensor.

    Raises AudioError for a file that is missing, not decodable, empty, non-finite or silent.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: file not found")
    try:
        data, source_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(
            f"{path}: cannot decode audio ({err}); the file is corrupt or not WAV/FLAC/OGG: "
            "re-download it or delete it"
        ) from err
    if data.shape[0] == 0:
        raise AudioError(f"{path}: zero-length audio (0 samples)")
    mono = data.mean(axis=1)
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: audio holds NaN or infinite samples")
    if np.abs(mono).max() < SILENCE_PEAK:
        raise AudioError(f"{path}: all-silent audio (peak below {SILENCE_PEAK:g})")
    wav = torch.from_numpy(np.ascontiguousarray(mono))
    if source_rate != sample_rate:
        wav = AF.resample(wav, source_rate, sample_rate)
    return wav


def fit_length(wav: torch.Tensor, n_samples: int, mode: LengthMode = "end") -> torch.Tensor:
    """Pad or crop the last axis of `wav` to exactly `n_samples`.

    mode "end": zero-pad at the end, crop the end (clips aligned at their start, e.g. ESC-50);
    "center": pad both sides, crop the middle (short utterances, e.g. spoken digits);
    "repeat": tile a short clip until it fills the length (UrbanSound8K practice).
    """
    if mode not in LENGTH_MODES:
        raise ValueError(f"unknown length mode {mode!r}; choose one of {LENGTH_MODES}")
    n = wav.shape[-1]
    if n >= n_samples:
        start = (n - n_samples) // 2 if mode == "center" else 0
        return wav[..., start : start + n_samples]
    if mode == "repeat":
        reps = -(-n_samples // n)
        return wav.repeat(*([1] * (wav.dim() - 1)), reps)[..., :n_samples]
    missing = n_samples - n
    left = missing // 2 if mode == "center" else 0
    return torch.nn.functional.pad(wav, (left, missing - left))
