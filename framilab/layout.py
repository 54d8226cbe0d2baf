"""Where each stage of a run keeps its files: one object owns every folder and file name.

A stage writes only its own folder. Distillation reads the inversion folder (pool, generator,
settings) and never writes into it, so an inversion run can feed several distillations (FRAMI with
and without hidden-state reuse) and a resumed distillation cannot damage the pool it started from.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPEC = "spec.json"
TEACHER = "teacher"
STUDENT_REAL = "student_real"
INVERSION_CHECKPOINT = "inversion_checkpoint.pt"
INVERSION_METRICS = "inversion_metrics.json"
POOL = "pool"
DISTILL_CHECKPOINT = "distill_checkpoint.pt"
DISTILL_METRICS = "distill_metrics.json"
KD_REAL_METRICS = "kd_real_metrics.json"
STUDENT = "student.pt"


def checkpoint_name(output_name: str) -> str:
    """train_classifier's per-epoch checkpoint of a model called `output_name`."""
    return f"{output_name}_checkpoint.pt"


def model_name(output_name: str) -> str:
    """train_classifier's finished model called `output_name`."""
    return f"{output_name}.pt"


def metrics_name(output_name: str) -> str:
    """train_classifier's metrics of a model called `output_name`."""
    return f"{output_name}_metrics.json"


@dataclass(frozen=True)
class Layout:
    """The three stage folders of one run; `chain(root)` puts them side by side under one folder.
    `teacher_file` names the teacher checkpoint in its folder (notebook 01 writes teacher.pt)."""

    teacher: Path
    inversion: Path
    distillation: Path
    teacher_file: str = model_name(TEACHER)

    @classmethod
    def chain(cls, root: str | Path) -> "Layout":
        root = Path(root)
        return cls(root / "teacher", root / "inversion", root / "distillation")

    @property
    def teacher_checkpoint(self) -> Path:
        return self.teacher / self.teacher_file

    @property
    def teacher_metrics(self) -> Path:
        return self.teacher / metrics_name(TEACHER)

    @property
    def student_real_metrics(self) -> Path:
        return self.teacher / metrics_name(STUDENT_REAL)

    @property
    def inversion_metrics(self) -> Path:
        return self.inversion / INVERSION_METRICS

    @property
    def pool(self) -> Path:
        return self.inversion / POOL

    @property
    def distill_metrics(self) -> Path:
        return self.distillation / DISTILL_METRICS

    @property
    def kd_real_metrics(self) -> Path:
        return self.distillation / KD_REAL_METRICS
