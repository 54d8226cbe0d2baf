"""What every data set shares: clip metadata, feature extraction with the cache, splits, checks.

A data set extracts all its log-Mel features when it is built (from the cache when it can),
so unusable files are found at once and skipped with one warning that names and counts them.
"""
from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..audio import AudioError, LengthMode, fit_length, read_audio
from ..cache import FeatureCache
from ..features import FeatureConfig, log_mel

DATA_ENV = "FRAMILAB_DATA"
SPLITS = (None, "all", "train", "test")


class DataWarning(UserWarning):
    """Files a data set skipped (unreadable, empty, silent, missing); the data set goes on without them."""


@dataclass
class Clip:
    """One item's metadata: where it came from and which fold or speaker it belongs to."""

    target: int
    path: Path | None = None
    fold: int | None = None
    speaker: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "path": None if self.path is None else str(self.path),
                "fold": self.fold, "speaker": self.speaker, **self.extra}


class AudioDataset(Dataset):
    """Log-Mel features (n_mels, frames) in dB with integer targets; `ds[i] -> (x, y)`."""

    def __init__(self, name: str, classes: Sequence[str], clips: Sequence[Clip],
                 features: Sequence[torch.Tensor], config: FeatureConfig,
                 skipped: Sequence[tuple[str, str]] = (), audio: Callable[[Clip], torch.Tensor] | None = None):
        if len(clips) != len(features):
            raise ValueError("clips and features differ in length")
        self.name = name
        self.classes = list(classes)
        self.clips = list(clips)
        self.features = list(features)
        self.targets = [clip.target for clip in self.clips]
        self.config = config
        self.skipped = list(skipped)
        self._audio = audio

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.features[index], self.targets[index]

    def metadata(self, index: int) -> dict[str, Any]:
        return self.clips[index].as_dict()

    def waveform(self, index: int) -> torch.Tensor:
        """Clip `index` as audio at the features' sample rate, cut or padded to the clip length the features
        were made from (to listen to it beside its spectrogram)."""
        if self._audio is None:
            raise ValueError(f"{self.name} keeps no audio for its clips (made from features alone)")
        return self._audio(self.clips[index])

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All features stacked (N, n_mels, frames) and targets (N,): training runs from memory."""
        return torch.stack(self.features), torch.tensor(self.targets, dtype=torch.long)

    def subset(self, indices: Sequence[int]) -> "AudioDataset":
        """The clips at `indices`, with their features, classes and audio (a split cut from this one)."""
        return AudioDataset(self.name, self.classes, [self.clips[i] for i in indices],
                            [self.features[i] for i in indices], self.config, audio=self._audio)

    def class_counts(self) -> dict[str, int]:
        counts = torch.bincount(torch.tensor(self.targets, dtype=torch.long), minlength=len(self.classes))
        return dict(zip(self.classes, counts.tolist()))

    def __repr__(self) -> str:
        return (f"AudioDataset({self.name!r}, {len(self)} clips, {len(self.classes)} classes, "
                f"features {self.config.n_mels}x{self.config.frames()}, skipped {len(self.skipped)})")


def resolve_root(root: str | Path | None, subdir: str, name: str, where: str) -> Path:
    """`root`, or $FRAMILAB_DATA/`subdir`; a clear error if neither names an existing folder."""
    if root is None:
        base = os.environ.get(DATA_ENV)
        if not base:
            raise FileNotFoundError(
                f"no root given for {name!r} and ${DATA_ENV} is not set: pass root='/path/to/{subdir}' "
                f"or set {DATA_ENV} to the folder that holds {subdir}/. {where}"
            )
        root = Path(base) / subdir
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{name} root {str(root)!r} does not exist or is not a folder. {where}")
    return root


def require_path(path: Path, root: Path, name: str, layout: str) -> Path:
    """`path`, or a wrong-layout error that says what was expected and what the root holds."""
    if not path.exists():
        found = sorted(p.name for p in root.iterdir())[:10]
        raise FileNotFoundError(
            f"{name}: expected {path.relative_to(root)} under {root}, which holds {found or 'nothing'}. "
            f"The {name} layout is: {layout}"
        )
    return path


def wav_files(folder: Path) -> list[Path]:
    """The WAV files in `folder`, whatever the case of their extension (.wav, .WAV), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav" and p.is_file())


def read_csv(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number in the file, row) of a UTF-8 metadata CSV (with or without a byte-order mark); an error
    naming any missing column and the header expected, or the file that is not UTF-8."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [col for col in required if col not in header]
            if missing:
                raise ValueError(
                    f"{path}: missing column(s) {missing}; found {header}, expected at least {list(required)}"
                )
            return [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#x} at offset {err.start}); "
                         "save it as UTF-8, as the data set ships it") from None


def check_unique(rows: Sequence[tuple[int, dict[str, str]]], column: str, path: Path, what: str) -> None:
    """A file listed twice would be trained on twice, or sit in two folds at once (train and test): an error
    naming both lines."""
    first: dict[str, int] = {}
    for line, row in rows:
        value = row[column].strip()
        if value in first:
            raise ValueError(f"{path}, lines {first[value]} and {line}: {what} {value!r} is listed twice, which would "
                             "count it twice or put it in two folds (train and test); remove one of the rows")
        first[value] = line


def label_names(rows: Sequence[tuple[int, dict[str, str]]], path: Path, id_column: str, name_column: str,
                ids: range) -> dict[int, str]:
    """Class id -> class name, checked over every row: each id lies in `ids` and names one class, and each class
    has one id; otherwise labels would be renumbered or merged without a word."""
    name_of: dict[int, tuple[str, int]] = {}
    id_of: dict[str, tuple[int, int]] = {}
    for line, row in rows:
        label, name = parse_int(row[id_column], id_column, path, line), row[name_column].strip()
        if label not in ids:
            raise ValueError(f"{path}, line {line}: {id_column} {label} is outside {ids.start}..{ids.stop - 1}; "
                             "fix the row")
        if label in name_of and name_of[label][0] != name:
            raise ValueError(f"{path}, lines {name_of[label][1]} and {line}: {id_column} {label} is "
                             f"{name_of[label][0]!r} in one and {name!r} in the other; fix the wrong row")
        if name in id_of and id_of[name][0] != label:
            raise ValueError(f"{path}, lines {id_of[name][1]} and {line}: {name_column} {name!r} has {id_column} "
                             f"{id_of[name][0]} and {label}; fix the wrong row")
        name_of.setdefault(label, (name, line))
        id_of.setdefault(name, (label, line))
    return {label: name for label, (name, _) in name_of.items()}


def check_fold(fold: int, all_folds: Sequence[int], path: Path, line: int) -> int:
    """A row outside the data set's folds would silently drop out of every split: an error."""
    if fold not in all_folds:
        raise ValueError(f"{path}, line {line}: fold {fold} is not one of {list(all_folds)}; the row would belong to "
                         "no split. Fix the fold or remove the row")
    return fold


def parse_int(value: str, column: str, path: Path, line: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}, line {line}: column {column!r} should be an integer, got {value!r}") from None


def _fold_number(value: Any, what: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} of {name} must be a fold number (an int), got {value!r} ({type(value).__name__})")
    return value


def choose_folds(split: str | None, folds: Iterable[int] | int | None, all_folds: Sequence[int],
                 test_fold: int, name: str) -> list[int]:
    """The folds a split means: train = all but `test_fold`, test = `test_fold`; or `folds` given (a list of fold
    numbers, or one)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for {name}; use 'train', 'test' or None (all)")
    if _fold_number(test_fold, "test_fold", name) not in all_folds:
        raise ValueError(f"test_fold={test_fold} is not a fold of {name}; folds are {list(all_folds)}")
    if folds is not None:
        if split not in (None, "all"):
            raise ValueError(f"give split or folds for {name}, not both (got split={split!r}, folds={folds})")
        if isinstance(folds, (str, bytes)):
            raise TypeError(f"folds of {name} must be a list of fold numbers such as [1, 2], got the text {folds!r}")
        chosen = sorted({_fold_number(f, "each of folds", name) for f in ([folds] if isinstance(folds, int) else folds)})
        bad = [f for f in chosen if f not in all_folds]
        if bad or not chosen:
            raise ValueError(f"folds {bad or chosen} are not folds of {name}; folds are {list(all_folds)}")
        return chosen
    if split == "train":
        return [f for f in all_folds if f != test_fold]
    if split == "test":
        return [test_fold]
    return list(all_folds)


def clip_features(wav: torch.Tensor, config: FeatureConfig, length_mode: LengthMode) -> torch.Tensor:
    """Fit one waveform to the clip length and take its log-Mel spectrogram."""
    return log_mel(fit_length(wav, config.clip_samples, length_mode), config)


def build_from_files(name: str, classes: Sequence[str], clips: Sequence[Clip], config: FeatureConfig,
                     length_mode: LengthMode, cache_dir: str | Path | None, progress: bool,
                     skipped: Sequence[tuple[str, str]] = ()) -> AudioDataset:
    """Extract (or fetch from the cache) the features of every clip; skip unusable files with a warning."""
    cache = FeatureCache(cache_dir, config)
    kept_clips, features, skipped = [], [], list(skipped)
    n_listed = len(clips) + len(skipped)
    for clip in tqdm(clips, desc=f"{name} features", disable=not progress, leave=False):
        path = Path(clip.path)
        try:
            if not path.is_file():
                raise AudioError(f"{path}: file not found")
            features.append(cache.get(path, _decoder(path, config, length_mode), extra=length_mode))
        except AudioError as err:
            skipped.append((str(path), str(err)))
            continue
        kept_clips.append(clip)
    warn_skipped(name, skipped, total=n_listed)
    if not kept_clips:
        raise ValueError(f"{name}: no usable audio among {len(clips)} listed files; see the warning above")

    def audio(clip: Clip) -> torch.Tensor:
        return fit_length(read_audio(clip.path, config.sample_rate), config.clip_samples, length_mode)

    return AudioDataset(name, classes, kept_clips, features, config, skipped, audio=audio)


def _decoder(path: Path, config: FeatureConfig, length_mode: LengthMode) -> Callable[[], torch.Tensor]:
    return lambda: clip_features(read_audio(path, config.sample_rate), config, length_mode)


def warn_skipped(name: str, skipped: Sequence[tuple[str, str]], total: int) -> None:
    if not skipped:
        return
    shown = "\n  ".join(reason for _, reason in skipped[:10])
    more = f"\n  ... and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    warnings.warn(f"{name}: skipped {len(skipped)} of {total} files:\n  {shown}{more}", DataWarning, stacklevel=3)
