"""UrbanSound8K in the original layout: audio/fold1..fold10/ and metadata/UrbanSound8K.csv, 10 folds."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..audio import LengthMode
from ..features import FeatureConfig
from .base import (AudioDataset, Clip, build_from_files, check_fold, check_unique, choose_folds, label_names, parse_int,
                   read_csv, require_path, resolve_root)

COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")
LAYOUT = "audio/fold1..fold10/*.wav and metadata/UrbanSound8K.csv with header " + ",".join(COLUMNS)
WHERE = ("UrbanSound8K (CC BY-NC 3.0) is distributed by J. Salamon, C. Jacoby and J. P. Bello "
         "(urbansounddataset.weebly.com).")
# Clips of up to 4 s at mixed rates; short ones are repeated to 4 s, as is common practice.
DEFAULT_CONFIG = FeatureConfig(sample_rate=16000, n_fft=1024, hop_length=320, n_mels=64, clip_seconds=4.0)
FOLDS = tuple(range(1, 11))
CLASS_IDS = range(10)


def load_urbansound8k(root: str | Path | None = None, *, split: str | None = None,
                      folds: Iterable[int] | None = None, test_fold: int = 10,
                      config: FeatureConfig | None = None, length_mode: LengthMode = "repeat",
                      cache_dir: str | Path | None = None, progress: bool = True) -> AudioDataset:
    """UrbanSound8K; use the predefined folds for cross-validation, never a random split."""
    root = resolve_root(root, "urbansound8k", "urbansound8k", WHERE)
    csv_path = require_path(root / "metadata" / "UrbanSound8K.csv", root, "urbansound8k", LAYOUT)
    audio_dir = require_path(root / "audio", root, "urbansound8k", LAYOUT)
    rows = read_csv(csv_path, COLUMNS)
    check_unique(rows, "slice_file_name", csv_path, "file")
    names = label_names(rows, csv_path, "classID", "class", CLASS_IDS)
    wanted = set(choose_folds(split, folds, FOLDS, test_fold, "urbansound8k"))
    clips = []
    for line, row in rows:
        target = int(row["classID"])
        fold = check_fold(parse_int(row["fold"], "fold", csv_path, line), FOLDS, csv_path, line)
        if fold in wanted:
            clips.append(Clip(target=target, path=audio_dir / f"fold{fold}" / row["slice_file_name"], fold=fold,
                              extra={"fsID": row["fsID"], "salience": row["salience"]}))
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{csv_path}: classID values {sorted(names)} are not 0..{len(names) - 1}")
    classes = [names[i] for i in range(len(names))]
    return build_from_files("urbansound8k", classes, clips, config or DEFAULT_CONFIG, length_mode, cache_dir, progress)
