"""AudioMNIST in the original layout: data/NN/{digit}_{NN}_{index}.wav and data/audioMNIST_meta.txt.

Splits are speaker-disjoint: the speakers, sorted by id, are dealt into 5 folds (fold = rank % 5 + 1);
the test split is one fold of 12 speakers, the training split the other 48.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

from ..audio import LengthMode
from ..features import FeatureConfig
from .base import AudioDataset, Clip, build_from_files, choose_folds, require_path, resolve_root, wav_files

LAYOUT = "data/NN/{digit}_{NN}_{index}.wav (NN = speaker 01..60) and data/audioMNIST_meta.txt (JSON keyed by speaker)"
WHERE = "AudioMNIST (MIT licence) is in the soerenab/AudioMNIST GitHub repository."
PATTERN = re.compile(r"^(\d)_(\d+)_(\d+)\.wav$", re.IGNORECASE)
# 48 kHz speech resampled to 8 kHz, as for FSDD, so digit models transfer between the two.
DEFAULT_CONFIG = FeatureConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=40, f_max=4000.0, clip_seconds=1.0)
CLASSES = [str(d) for d in range(10)]
FOLDS = (1, 2, 3, 4, 5)


def load_audiomnist(root: str | Path | None = None, *, split: str | None = None, folds: Iterable[int] | None = None,
                    test_fold: int = 5, config: FeatureConfig | None = None, length_mode: LengthMode = "center",
                    cache_dir: str | Path | None = None, progress: bool = True) -> AudioDataset:
    """AudioMNIST with speaker-disjoint folds; metadata carries speaker, gender and age."""
    root = resolve_root(root, "audiomnist", "audiomnist", WHERE)
    data_dir = require_path(root / "data", root, "audiomnist", LAYOUT)
    meta_path = require_path(data_dir / "audioMNIST_meta.txt", root, "audiomnist", LAYOUT)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{meta_path}: not valid JSON ({err}); it should map speaker ids to their details") from None
    speaker_dirs = sorted(p for p in data_dir.iterdir() if p.is_dir() and p.name.isdigit())
    if not speaker_dirs:
        raise FileNotFoundError(f"audiomnist: no speaker folders under {data_dir}. The layout is {LAYOUT}")
    fold_of = {d.name: rank % len(FOLDS) + 1 for rank, d in enumerate(sorted(speaker_dirs, key=lambda d: int(d.name)))}
    wanted = set(choose_folds(split, folds, FOLDS, test_fold, "audiomnist"))
    clips, skipped = [], []
    for speaker_dir in speaker_dirs:
        speaker = speaker_dir.name
        if fold_of[speaker] not in wanted:
            continue
        info = meta.get(speaker)
        for path in wav_files(speaker_dir):
            match = PATTERN.match(path.name)
            if not match or match[2] != speaker:
                skipped.append((str(path), f"{path}: name does not follow {{digit}}_{speaker}_{{index}}.wav"))
                continue
            if info is None:
                skipped.append((str(path), f"{path}: speaker {speaker} is missing from {meta_path.name}"))
                continue
            clips.append(Clip(target=int(match[1]), path=path, fold=fold_of[speaker], speaker=speaker,
                              extra={"index": int(match[3]), "gender": info.get("gender"), "age": info.get("age")}))
    return build_from_files("audiomnist", CLASSES, clips, config or DEFAULT_CONFIG, length_mode, cache_dir, progress,
                            skipped=skipped)
