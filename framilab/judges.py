"""Judges: classifiers trained on the real training split apart from the teacher, that read synthetic samples.

The teacher's agreement with a pool's labels says little: inversion optimises exactly that, and a
sample only the teacher believes can be adversarial noise on its own decision boundaries. A model of
another family, or of the teacher's family from another seed, never took part in synthesis; the share
of pool samples it assigns to their target class (transfer accuracy) counts samples that carry the
class's features. Judges live next to the teacher, in <teacher folder>/judges/<preset>-seed<k>/.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .checkpoint import TrainedModel, load_trained
from .data import AudioDataset
from .layout import metrics_name, model_name
from .train import TrainConfig, train_classifier

# Another family than the default teacher, and the teacher's own preset from another seed.
JUDGES = ("tdnn-teacher", "resnet-teacher")
FOLDER = "judges"
JUDGE = "judge"


class JudgeError(ValueError):
    """A judge that cannot read the teacher's samples (other classes or front end)."""


def judges_dir(teacher_path: str | Path) -> Path:
    return Path(teacher_path).parent / FOLDER


def judge_runs(presets: list[str] | tuple[str, ...], teacher_seed: int) -> list[tuple[str, str, int]]:
    """(name, preset, seed) of each judge: its seed is never the teacher's, and distinct between judges of one
    preset."""
    return [(f"{preset}-seed{teacher_seed + 1 + i}", preset, teacher_seed + 1 + i) for i, preset in enumerate(presets)]


def train_judge(train_set: AudioDataset, test_set: AudioDataset, teacher_path: str | Path, config: TrainConfig,
                name: str, preset: str, seed: int, *, resume: bool = False, overwrite: bool = False,
                progress: bool = True, device: str = "cpu") -> dict[str, Any]:
    """One judge (judge_runs) trained on the teacher's training split with the teacher's recipe `config`, in
    judges/<name>/ beside the teacher; with `resume`, a finished judge is read back, an unfinished one
    continues from its checkpoint. Returns its metrics."""
    finished = judges_dir(teacher_path) / name / metrics_name(JUDGE)
    if resume and finished.is_file():
        return json.loads(finished.read_text())
    return train_classifier(preset, train_set, test_set, judges_dir(teacher_path) / name,
                            dataclasses.replace(config, seed=seed), output_name=JUDGE, resume=resume,
                            overwrite=overwrite, progress=progress, device=device)


def train_judges(train_set: AudioDataset, test_set: AudioDataset, teacher_path: str | Path,
                 config: TrainConfig, presets: list[str] | tuple[str, ...] = JUDGES, **options: Any
                 ) -> dict[str, dict[str, Any]]:
    """Every judge of `presets` (train_judge's `options`); each one's metrics by name."""
    return {name: train_judge(train_set, test_set, teacher_path, config, name, preset, seed, **options)
            for name, preset, seed in judge_runs(presets, config.seed)}


def load_judges(teacher: TrainedModel, device: str = "cpu") -> dict[str, TrainedModel]:
    """The finished judges beside the teacher's checkpoint, by name; none when no judge was trained."""
    if teacher.path is None:
        return {}
    judges = {}
    for path in sorted(judges_dir(teacher.path).glob(f"*/{model_name(JUDGE)}")):
        judge = load_trained(path, device)
        if judge.classes != teacher.classes or judge.feature_config != teacher.feature_config:
            raise JudgeError(f"{path} was trained on other classes or another front end than {teacher.path} "
                             f"({judge.classes} vs {teacher.classes}); delete {path.parent} or retrain the judges "
                             "with the teacher (notebook 01, `judges`)")
        judges[path.parent.name] = judge
    return judges
