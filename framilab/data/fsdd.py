"""Free Spoken Digit Dataset: recordings/{digit}_{speaker}_{take}.wav; takes 0-4 are the test split."""
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
              config: FeatureConfig | None = None, length_mode: LengthMode = "center",
              cache_dir: str | Path | None = None, progress: bool = True) -> AudioDataset:
    """FSDD with the official split (test = takes 0-4); `speakers` keeps only those speakers."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for fsdd; use 'train', 'test' or None (all)")
    root = resolve_root(root, "fsdd", "fsdd", WHERE)
    rec_dir = require_path(root / "recordings", root, "fsdd", LAYOUT)
    clips, skipped = [], []
    for path in wav_files(rec_dir):
        match = PATTERN.match(path.name)
        if not match:
            skipped.append((str(path), f"{path}: name does not follow {{digit}}_{{speaker}}_{{take}}.wav"))
            continue
        digit, speaker, take = int(match[1]), match[2], int(match[3])
        is_test = take in TEST_TAKES
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
