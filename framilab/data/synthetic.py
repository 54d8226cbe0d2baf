"""The embedded default data set: ten classes of environmental-like sounds made from a seed.

No download and no files: every clip is a deterministic function of (seed, split, index), made
in numpy in milliseconds. It is built to be a benchmark, not a toy: events have random pitch,
duration, onset and gain, sit in coloured background noise at a random SNR, and often share
the clip with a quieter event of another class, so a small teacher lands near 90%, not 100%.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..cache import FeatureCache
from ..features import FeatureConfig
from .base import SPLITS, AudioDataset, Clip, clip_features

SAMPLE_RATE = 16000
DEFAULT_CONFIG = FeatureConfig(sample_rate=SAMPLE_RATE, n_fft=1024, hop_length=320, n_mels=64, clip_seconds=2.0)

# One line per class: what it is made of.
CLASS_DESCRIPTIONS = {
    "siren": "a harmonic tone whose pitch wails up and down (0.6-1.5 kHz, 0.3-3 sweeps/s)",
    "car_horn": "a steady harmonic stack (f0 250-550 Hz, bright), one to three blasts",
    "dog_bark": "short voiced bursts (80-250 ms) whose pitch drops, with breath noise, 1-4 barks",
    "drilling": "a high motor whine (1-3 kHz) amplitude-modulated at 20-60 Hz, over band noise",
    "engine_idling": "a low pulse train (25-70 Hz) through a low-pass, with slow throb",
    "jackhammer": "broadband noise hits repeated 8-20 times a second",
    "gun_shot": "one to three sharp broadband impulses with a fast-decaying tail",
    "rain": "pink-ish broadband hiss sprinkled with random droplet clicks",
    "street_music": "three-note chords of harmonic tones that change every 0.25-0.6 s",
    "bird_chirp": "rapid upward chirps (2-6 kHz, 30-120 ms) in short trills",
}
CLASSES = list(CLASS_DESCRIPTIONS)
SPLIT_IDS = {"train": 0, "test": 1}
# Cached features are keyed by this module's own code: a change to how clips are made misses the cache.
GENERATOR_HASH = hashlib.sha1(Path(__file__).read_bytes()).hexdigest()[:16]


def _time(n: int) -> np.ndarray:
    return np.arange(n) / SAMPLE_RATE


def _tone(freq: np.ndarray | float, n: int, harmonics: int, rolloff: float, rng: np.random.Generator) -> np.ndarray:
    """A harmonic tone with (possibly time-varying) fundamental `freq`."""
    freq = np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE + rng.uniform(0, 2 * np.pi)
    out = np.zeros(n)
    for k in range(1, harmonics + 1):
        alias_free = (k * freq) < SAMPLE_RATE / 2
        out += alias_free * rolloff ** (k - 1) * np.sin(k * phase)
    return out


def _noise(n: int, rng: np.random.Generator, exponent: float = 0.0) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spectrum *= 1 / np.maximum(freqs, 20.0) ** (exponent / 2)
    out = np.fft.irfft(spectrum, n)
    return out / (np.sqrt(np.mean(out ** 2)) + 1e-12)


def _band(x: np.ndarray, low: float, high: float) -> np.ndarray:
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    spectrum[(freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, len(x))


def _bursts(n: int, starts: list[int], length: int, make: Callable[[int], np.ndarray]) -> np.ndarray:
    out = np.zeros(n)
    for start in starts:
        stop = min(n, start + length)
        if stop > start:
            out[start:stop] += make(stop - start)
    return out


def _siren(n, rng):
    t = _time(n)
    centre, depth, rate = rng.uniform(600, 1500), rng.uniform(150, 500), rng.uniform(0.3, 3.0)
    freq = centre + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    return _tone(freq, n, harmonics=3, rolloff=0.5, rng=rng)


def _car_horn(n, rng):
    f0 = rng.uniform(250, 550)
    tone = _tone(f0, n, harmonics=8, rolloff=0.8, rng=rng)
    gate = np.zeros(n)
    blasts = rng.integers(1, 4)
    edges = np.sort(rng.uniform(0, 1, size=2 * blasts)) * n
    for a, b in edges.reshape(-1, 2).astype(int):
        gate[a:max(b, a + n // 8)] = 1
    return tone * gate


def _dog_bark(n, rng):
    length = int(rng.uniform(0.08, 0.25) * SAMPLE_RATE)
    starts = sorted(rng.integers(0, max(1, n - length), size=rng.integers(1, 5)).tolist())

    def bark(m):
        f0 = np.linspace(rng.uniform(350, 600), rng.uniform(180, 300), m)
        env = np.exp(-np.linspace(0, 5, m)) * np.minimum(1, np.linspace(0, 20, m))
        return env * (_tone(f0, m, harmonics=10, rolloff=0.7, rng=rng) + 0.4 * _noise(m, rng, 1.0))

    return _bursts(n, starts, length, bark)


def _drilling(n, rng):
    t = _time(n)
    whine = _tone(rng.uniform(1000, 3000), n, harmonics=2, rolloff=0.3, rng=rng)
    am = 1 + 0.8 * np.sin(2 * np.pi * rng.uniform(20, 60) * t)
    return whine * am + 0.3 * _band(_noise(n, rng), 800, 5000)


def _engine_idling(n, rng):
    t = _time(n)
    pulses = _tone(rng.uniform(25, 70), n, harmonics=25, rolloff=0.9, rng=rng)
    throb = 1 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t)
    return _band(pulses, 0, rng.uniform(400, 1200)) * throb


def _jackhammer(n, rng):
    period = int(SAMPLE_RATE / rng.uniform(8, 20))
    length = max(8, int(period * rng.uniform(0.2, 0.5)))
    starts = list(range(int(rng.integers(0, period)), n, period))
    return _bursts(n, starts, length, lambda m: _noise(m, rng) * np.exp(-np.linspace(0, 4, m)))


def _gun_shot(n, rng):
    length = min(n, int(rng.uniform(0.2, 0.5) * SAMPLE_RATE))
    starts = sorted(rng.integers(0, max(1, n - length // 2), size=rng.integers(1, 4)).tolist())
    return _bursts(n, starts, length, lambda m: _noise(m, rng, 0.5) * np.exp(-np.linspace(0, rng.uniform(8, 20), m)))


def _rain(n, rng):
    drops = np.zeros(n)
    idx = rng.integers(0, n, size=int(rng.uniform(20, 80) * n / SAMPLE_RATE))
    drops[idx] = rng.uniform(2, 6, size=len(idx))
    drops = np.convolve(drops, np.exp(-np.linspace(0, 6, 64)), mode="same")
    return _noise(n, rng, rng.uniform(0.6, 1.2)) + drops


def _street_music(n, rng):
    root = rng.uniform(130, 330)
    step = int(rng.uniform(0.25, 0.6) * SAMPLE_RATE)
    out = np.zeros(n)
    for start in range(0, n, step):
        m = min(step, n - start)
        chord_root = root * 2 ** (rng.integers(-5, 8) / 12)
        env = np.exp(-np.linspace(0, 3, m))
        for interval in (0, rng.choice([3, 4]), 7):
            out[start:start + m] += env * _tone(chord_root * 2 ** (interval / 12), m, harmonics=5, rolloff=0.6, rng=rng)
    return out


def _bird_chirp(n, rng):
    length = int(rng.uniform(0.03, 0.12) * SAMPLE_RATE)
    gap = int(rng.uniform(0.05, 0.2) * SAMPLE_RATE)
    first = int(rng.integers(0, max(1, n // 2)))
    starts = list(range(first, n, length + gap))[: rng.integers(2, 10)]

    def chirp(m):
        low = rng.uniform(2000, 4000)
        freq = np.linspace(low, low + rng.uniform(500, 2000), m)
        return np.hanning(m) * _tone(freq, m, harmonics=1, rolloff=1.0, rng=rng)

    return _bursts(n, starts, length, chirp)


GENERATORS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "siren": _siren, "car_horn": _car_horn, "dog_bark": _dog_bark, "drilling": _drilling,
    "engine_idling": _engine_idling, "jackhammer": _jackhammer, "gun_shot": _gun_shot, "rain": _rain,
    "street_music": _street_music, "bird_chirp": _bird_chirp,
}


def _event(cls: int, n_clip: int, rng: np.random.Generator) -> np.ndarray:
    """One event of class `cls` with random duration and onset, unit RMS over its active part."""
    duration = int(rng.uniform(0.3, 1.0) * n_clip)
    onset = int(rng.integers(0, n_clip - duration + 1))
    sound = GENERATORS[CLASSES[cls]](duration, rng)
    sound /= np.sqrt(np.mean(sound ** 2)) + 1e-12
    fade = min(duration // 2, int(0.01 * SAMPLE_RATE))
    ramp = np.linspace(0, 1, fade)
    sound[:fade] *= ramp
    sound[duration - fade:] *= ramp[::-1]
    out = np.zeros(n_clip)
    out[onset:onset + duration] = sound
    return out


def make_clip(cls: int, seed: int, split_id: int, index: int, seconds: float = 2.0,
              snr_db: tuple[float, float] = (-3.0, 18.0), distractor_prob: float = 0.7,
              distractor_db: tuple[float, float] = (-12.0, -2.0)) -> np.ndarray:
    """One clip of class `cls`: event + coloured background noise + maybe a quieter other-class event."""
    rng = np.random.default_rng([seed, split_id, index, cls])
    n = int(round(seconds * SAMPLE_RATE))
    clip = _event(cls, n, rng)
    if rng.uniform() < distractor_prob:
        other = (cls + int(rng.integers(1, len(CLASSES)))) % len(CLASSES)
        clip += 10 ** (rng.uniform(*distractor_db) / 20) * _event(other, n, rng)
    clip += 10 ** (-rng.uniform(*snr_db) / 20) * _noise(n, rng, rng.uniform(0, 2))
    gain = 10 ** (rng.uniform(-30, -6) / 20)
    return (gain * clip / (np.abs(clip).max() + 1e-12)).astype(np.float32)


def load_synthetic(root: None = None, *, split: str | None = None, seed: int = 0, n_per_class: int | None = None,
                   snr_db: tuple[float, float] = (-3.0, 18.0), distractor_prob: float = 0.7,
                   config: FeatureConfig | None = None, cache_dir: str | Path | None = None,
                   progress: bool = True) -> AudioDataset:
    """The embedded default: 10 classes, 100 clips per class for train and 50 for test by default.

    Making a split takes seconds to tens of seconds; its features are cached like decoded audio is
    (`cache_dir`, default $FRAMILAB_CACHE), so every later notebook and test loads it at once.
    """
    if root is not None:
        raise ValueError("the synthetic data set is made from a seed and takes no root; leave root=None")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for synthetic; use 'train', 'test' or None (all)")
    config = config or DEFAULT_CONFIG
    if config.sample_rate != SAMPLE_RATE:
        raise ValueError(f"synthetic audio is made at {SAMPLE_RATE} Hz; use a FeatureConfig with that sample_rate")
    splits = ["train", "test"] if split in (None, "all") else [split]
    cache = FeatureCache(cache_dir, config)
    clips, features = [], []
    # One bar step per split, made or cached alike, so a rerun shows the same output as the first run.
    for name in tqdm(splits, desc="synthetic splits", disable=not progress, leave=False):
        count = n_per_class or (100 if name == "train" else 50)
        jobs = [(cls, i) for i in range(count) for cls in range(len(CLASSES))]

        def make_split() -> torch.Tensor:
            return torch.stack([
                clip_features(torch.from_numpy(make_clip(cls, seed, SPLIT_IDS[name], i, config.clip_seconds, snr_db,
                                                         distractor_prob)), config, "end")
                for cls, i in jobs])

        source = f"synthetic|{GENERATOR_HASH}|{seed}|{name}|{count}|{snr_db}|{distractor_prob}"
        features.extend(cache.fetch(cache.source_key(source), make_split).unbind(0))
        clips.extend(Clip(target=cls, extra={"split": name, "index": i, "seed": seed}) for cls, i in jobs)

    def audio(clip: Clip) -> torch.Tensor:
        extra = clip.extra
        return torch.from_numpy(make_clip(clip.target, extra["seed"], SPLIT_IDS[extra["split"]], extra["index"],
                                          config.clip_seconds, snr_db, distractor_prob))

    return AudioDataset("synthetic", CLASSES, clips, features, config, audio=audio)
