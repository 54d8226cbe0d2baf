"""Free Spoken Digit Dataset: recordings/{digit}_{speaker}_{take}.wav.

Two protocols. The official split tests takes 0-4 of every speaker and trains on takes 5-49 of the
same speakers, so it never asks about a new voice. `test_fold` (a speaker's name: FSDD's folds are its
speakers) holds one speaker out instead
(every take of theirs is the test split, every other speaker's the training split): leave-one-speaker-out,
one fold per speaker, which is where a model that learnt voices rather than digits fails.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..audio import LengthMode
from ..features import FeatureConfig
from .base import SPLITS, AudioDataset, Clip, build_from_files, require_path, resolve_root, wav_files

LAYOUT = "recordings/{digit}_{speaker}_{take}.wav, e.g. recordings/7_jackson_32.wav"
WHERE = "FSDD (CC BY-SA 4.0) is in the Jakobovski/free-spoken-digit-dataset GitHub repository."
PATTERN = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$", re.IGNORECASE)
# 8 kHz speech: 40 mel bins up to 4 kHz, 10 ms hop, utterances centred in 1 s.
DEFAULT_CONFIG = FeatureConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=40, f_max=4000.0, clip_seconds=1.0)
CLASSES = [str(d) for d in range(10)]
TEST_TAKES = range(0, 5)


def load_fsdd(root: str | Path | None = None, *, split: str | None = None, speakers: list[str] | None = None,
              test_fold: str | None = None, config: FeatureConfig | None = None,
              length_mode: LengthMode = "center", cache_dir: str | Path | None = None,
              progress: bool = True) -> AudioDataset:
    """FSDD with the official split (test = takes 0-4), or with speaker `test_fold` held out (test = all of that
    speaker's takes, train = every other speaker's); `speakers` keeps only those speakers."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for fsdd; use 'train', 'test' or None (all)")
    if test_fold is not None and not isinstance(test_fold, str):
        raise TypeError(f"test_fold of fsdd is a speaker's name such as 'jackson' (its folds are its speakers), "
                        f"got {test_fold!r}")
    root = resolve_root(root, "fsdd", "fsdd", WHERE)
    rec_dir = require_path(root / "recordings", root, "fsdd", LAYOUT)
    if test_fold is not None and test_fold not in speakers_in(rec_dir):
        raise ValueError(f"fsdd: test_fold {test_fold!r} names no speaker with recordings under {rec_dir}; "
                         f"speakers there: {sorted(speakers_in(rec_dir))}")
    clips, skipped = [], []
    for path in wav_files(rec_dir):
        match = PATTERN.match(path.name)
        if not match:
            skipped.append((str(path), f"{path}: name does not follow {{digit}}_{{speaker}}_{{take}}.wav"))
            continue
        digit, speaker, take = int(match[1]), match[2], int(match[3])
        is_test = take in TEST_TAKES if test_fold is None else speaker == test_fold
        if (split == "train" and is_test) or (split == "test" and not is_test):
            continue
        if speakers is not None and speaker not in speakers:
            continue
        clips.append(Clip(target=digit, path=path, speaker=speaker, extra={"take": take}))
    if not clips and not skipped:
        raise FileNotFoundError(f"fsdd: no recordings under {rec_dir} for split={split!r}, speakers={speakers}. "
                                f"The layout is {LAYOUT}")
    return build_from_files("fsdd", CLASSES, clips, config or DEFAULT_CONFIG, length_mode, cache_dir, progress,
                            skipped=skipped)


def speakers_in(rec_dir: Path) -> set[str]:
    """The speakers whose recordings follow the layout in `rec_dir` (the folds of leave-one-speaker-out)."""
    return {match[2] for path in wav_files(rec_dir) if (match := PATTERN.match(path.name))}
