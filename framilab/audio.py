"""Reading audio files into mono waveforms at one sample rate, and fitting them to a length.

torchaudio.load needs torchcodec, which is not available everywhere; soundfile decodes
WAV/FLAC/OGG itself. Resampling between rates with a small ratio (44.1 kHz -> 16 kHz is 441/160) is
torchaudio's exact windowed sinc; a rate that shares almost no factor with the target (22,051 Hz) would
make that filter bank thousands of phases long, so those go through soxr (librosa's resampler), whose
memory does not depend on the ratio.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Literal

import librosa
import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

# Peak amplitude below which a clip counts as silent (about -100 dBFS).
SILENCE_PEAK = 1e-5
# A clip shorter than this is refused: padded it is silence, repeated it is a buzz at 1/length Hz.
MIN_SECONDS = 0.1
# torchaudio resamples when the reduced ratio's larger term is at most this (441 for 44.1 kHz <-> 16 kHz).
EXACT_RATIO_TERMS = 1000

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
    promised = wav_header_frames(path)
    if promised is not None and promised > data.shape[0]:
        raise AudioError(f"{path}: truncated: its header promises {promised} samples, the file holds {data.shape[0]} "
                         f"({data.shape[0] / source_rate:.3f} s); re-download it or delete it")
    if data.shape[0] < MIN_SECONDS * source_rate:
        raise AudioError(f"{path}: {data.shape[0]} samples ({data.shape[0] / source_rate:.3f} s), shorter than "
                         f"{MIN_SECONDS} s: too short to hold a sound, and padding or repeating it would not make one")
    mono = data.mean(axis=1)
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: audio holds NaN or infinite samples")
    if np.abs(mono).max() < SILENCE_PEAK:
        raise AudioError(f"{path}: all-silent audio (peak below {SILENCE_PEAK:g})")
    return resample(torch.from_numpy(np.ascontiguousarray(mono)), source_rate, sample_rate)


def resample(wav: torch.Tensor, source_rate: int, target_rate: int) -> torch.Tensor:
    """`wav` (N,) from `source_rate` to `target_rate`, in memory that does not grow with the ratio's terms."""
    if source_rate == target_rate:
        return wav
    if max(source_rate, target_rate) // math.gcd(source_rate, target_rate) <= EXACT_RATIO_TERMS:
        return AF.resample(wav, source_rate, target_rate)
    out = librosa.resample(wav.numpy(), orig_sr=source_rate, target_sr=target_rate, res_type="soxr_hq")
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


def wav_header_frames(path: Path) -> int | None:
    """The number of frames a RIFF/WAVE file's data chunk declares (None for other formats, or a streamed
    size): libsndfile silently reads what is there, so a truncated download would pass for a short clip."""
    with open(path, "rb") as handle:
        riff = handle.read(12)
        if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            return None
        block_align = None
        while len(header := handle.read(8)) == 8:
            chunk, size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk == b"fmt " and size >= 16:
                block_align = struct.unpack("<H", handle.read(16)[12:14])[0]
                handle.seek(size - 16 + size % 2, 1)
            elif chunk == b"data":
                return None if not block_align or size == 0xFFFFFFFF else size // block_align
            else:
                handle.seek(size + size % 2, 1)
    return None


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
