"""ESC-50 (and its ESC-10 subset) in the original layout: audio/*.wav and meta/esc50.csv, 5 folds."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..audio import LengthMode
from ..features import FeatureConfig
from .base import (AudioDataset, Clip, build_from_files, check_fold, check_unique, choose_folds, label_names, parse_int,
                   read_csv, require_path, resolve_root)

COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
LAYOUT = "audio/{fold}-{src_file}-{take}-{target}.wav and meta/esc50.csv with header " + ",".join(COLUMNS)
WHERE = ("ESC-50 (CC BY-NC 3.0; ESC-10 clips CC BY 3.0) is published by K. J. Piczak "
         "in the karolpiczak/ESC-50 GitHub repository.")
# 5 s clips at 44.1 kHz; a 20 ms hop keeps a clip at 251 frames, cheap enough to invert on a CPU.
DEFAULT_CONFIG = FeatureConfig(sample_rate=16000, n_fft=1024, hop_length=320, n_mels=64, clip_seconds=5.0)
FOLDS = (1, 2, 3, 4, 5)
TARGETS = range(50)


def load_esc50(root: str | Path | None = None, *, split: str | None = None, folds: Iterable[int] | None = None,
               esc10: bool = False, test_fold: int = 5, config: FeatureConfig | None = None,
               length_mode: LengthMode = "end", cache_dir: str | Path | None = None,
               progress: bool = True) -> AudioDataset:
    """ESC-50; `esc10=True` keeps the ESC-10 rows and maps their targets to 0..9 (in ESC-50 order)."""
    name = "esc10" if esc10 else "esc50"
    root = resolve_root(root, name, name, WHERE)
    csv_path = require_path(root / "meta" / "esc50.csv", root, name, LAYOUT)
    audio_dir = require_path(root / "audio", root, name, LAYOUT)
    all_rows = read_csv(csv_path, COLUMNS)
    check_unique(all_rows, "filename", csv_path, "file")
    categories = label_names(all_rows, csv_path, "target", "category", TARGETS)
    rows = [(line, row) for line, row in all_rows if not esc10 or row["esc10"].strip().lower() == "true"]
    if not rows:
        raise ValueError(f"{csv_path}: no {'ESC-10 ' if esc10 else ''}rows")
    wanted = set(choose_folds(split, folds, FOLDS, test_fold, name))
    order = sorted({int(row["target"]) for _, row in rows})
    remap = {target: i for i, target in enumerate(order)}
    classes = [categories[t] for t in order]
    clips = []
    for line, row in rows:
        fold = check_fold(parse_int(row["fold"], "fold", csv_path, line), FOLDS, csv_path, line)
        if fold in wanted:
            target = int(row["target"])
            clips.append(Clip(target=remap[target], path=audio_dir / row["filename"], fold=fold,
                              extra={"esc50_target": target, "src_file": row["src_file"], "take": row["take"]}))
    return build_from_files(name, classes, clips, config or DEFAULT_CONFIG, length_mode, cache_dir, progress)


def load_esc10(root: str | Path | None = None, **options) -> AudioDataset:
    """The ESC-10 subset (default root $FRAMILAB_DATA/esc10): `load_esc50(..., esc10=True)`."""
    return load_esc50(root, esc10=True, **options)
