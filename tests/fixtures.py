"""Tiny data sets written in the original ESC-50, UrbanSound8K, AudioMNIST and FSDD layouts."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from conftest import tone, write_wav

ESC50_HEADER = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
US8K_HEADER = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
# (ESC-50 target, category, in ESC-10)
ESC_CLASSES = [(0, "dog", True), (1, "rooster", True), (5, "cat", False), (40, "helicopter", True)]
US8K_CLASSES = ["air_conditioner", "car_horn", "children_playing"]
US8K_RATES = [44100, 48000, 22050, 96000, 16000]


def make_esc50(root: Path, clips_per_fold: int = 1) -> Path:
    """5 folds x 4 classes at 44.1 kHz, 5 s each, with the original filename pattern."""
    rows = []
    for fold in range(1, 6):
        for k, (target, category, esc10) in enumerate(ESC_CLASSES):
            for take in "ABCDEFGH"[:clips_per_fold]:
                src = 1000 + 10 * fold + k
                name = f"{fold}-{src}-{take}-{target}.wav"
                write_wav(root / "audio" / name, tone(200 + 150 * k, 5.0, 44100, 0.3), 44100)
                rows.append([name, fold, target, category, esc10, src, take])
    _write_csv(root / "meta" / "esc50.csv", ESC50_HEADER, rows)
    return root


def make_urbansound8k(root: Path) -> Path:
    """10 folds x 3 classes at mixed sample rates, stereo and mono, 1-4 s long."""
    rows = []
    for fold in range(1, 11):
        for class_id, name in enumerate(US8K_CLASSES):
            rate = US8K_RATES[(fold + class_id) % len(US8K_RATES)]
            seconds = 1.0 + (fold % 4)
            data = tone(300 + 200 * class_id, seconds, rate, 0.3)
            if fold % 2:
                data = np.stack([data, 0.5 * data], axis=1)
            fs_id = 100 * fold + class_id
            file = f"{fs_id}-{class_id}-0-0.wav"
            write_wav(root / "audio" / f"fold{fold}" / file, data, rate)
            rows.append([file, fs_id, 0.0, seconds, 1, fold, class_id, name])
    _write_csv(root / "metadata" / "UrbanSound8K.csv", US8K_HEADER, rows)
    return root


def make_audiomnist(root: Path, speakers: int = 10, per_digit: int = 1) -> Path:
    """`speakers` speakers x 10 digits at 48 kHz, with audioMNIST_meta.txt."""
    meta = {}
    for s in range(1, speakers + 1):
        sid = f"{s:02d}"
        meta[sid] = {"accent": "German", "age": str(20 + s), "gender": "male" if s % 2 else "female",
                     "native speaker": "yes", "origin": "Europe, Germany", "recordingdate": "17-06-22-11-04-28",
                     "recordingroom": "Kino"}
        for digit in range(10):
            for index in range(per_digit):
                write_wav(root / "data" / sid / f"{digit}_{sid}_{index}.wav", tone(200 + 60 * digit, 0.6, 48000), 48000)
    (root / "data" / "audioMNIST_meta.txt").write_text(json.dumps(meta, indent=1))
    return root


def make_fsdd(root: Path, speakers=("alice", "bob"), takes=range(0, 7)) -> Path:
    for speaker in speakers:
        for digit in range(10):
            for take in takes:
                write_wav(root / "recordings" / f"{digit}_{speaker}_{take}.wav", tone(200 + 60 * digit, 0.4, 8000), 8000)
    return root


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
