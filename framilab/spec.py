"""One frozen, nested description of a run: data, teacher, inversion, distillation, seed and device.

A spec is saved in every stage folder it runs (layout.SPEC) and read back from JSON or YAML; an
unknown field is refused with the valid names, so a typo never runs the default silently. Field
names follow the stage notebooks' parameters, so a notebook builds its spec from its parameters.

    spec = RunSpec.from_dict({"data": {"name": "fsdd"}, "inversion": {"synth": {"fic": 0.0}}, "seed": 1})
    spec.save("run.yaml"); RunSpec.load("run.yaml") == spec
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import check_fields
from .judges import JUDGES
from .synthesis import METHODS, SynthConfig


@dataclass(frozen=True)
class DataSpec:
    """The data set, its folder (None: $FRAMILAB_DATA/<name>) and its held-out fold or FSDD speaker."""

    name: str = "synthetic"
    root: str | None = None
    fold: int | str | None = None
    n_per_class: int | None = None   # synthetic only: clips per class (None: 100 train, 50 test)

    def options(self) -> dict[str, Any]:
        """load_splits' keyword arguments beyond the name and folder."""
        out: dict[str, Any] = {} if self.fold is None else {"test_fold": self.fold}
        if self.n_per_class is not None:
            out["n_per_class"] = self.n_per_class
        return out


@dataclass(frozen=True)
class TeacherSpec:
    """Notebook 01: the teacher, the 'student from real data' reference and the judges."""

    model: str = "resnet-teacher"
    epochs: int = 6
    batch_size: int = 64
    lr: float = 3e-3
    crop_seconds: float | None = 1.6
    mixup_alpha: float = 0.0
    student: str | None = "resnet-student"
    student_epochs: int | None = None
    judges: tuple[str, ...] = JUDGES
    seed: int | None = None          # None: the run's seed (the benchmark trains one teacher for all seeds)


@dataclass(frozen=True)
class InversionSpec:
    """Notebook 02: `synth` overrides the method's SynthConfig (e.g. {"fic": 0.0, "generator": "2d"})."""

    method: str = "frami"
    rounds: int = 3
    warmup: int = 1
    steps_per_round: int = 10
    batch_size: int = 64
    frames: int | tuple[int, int] | None = None
    student: str = "resnet-student"
    student_steps: int = 5
    synth: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown synthesis method {self.method!r}; choose one of {sorted(METHODS)}")
        check_fields(SynthConfig, self.synth, "synthesis setting(s) in inversion.synth")
        clash = sorted({"steps", "warmup"} & set(self.synth))
        if clash:
            raise ValueError(f"inversion.synth sets {clash}: give them as inversion.steps_per_round and "
                             "inversion.warmup instead")
        METHODS[self.method].replace(**self.weights())

    def weights(self) -> dict[str, Any]:
        """run_inversion's SynthConfig overrides."""
        return {**self.synth, "steps": self.steps_per_round, "warmup": self.warmup}


@dataclass(frozen=True)
class DistillationSpec:
    """Notebook 03: the student, its loss, its budget and the 'KD on real data' reference."""

    student: str = "resnet-student"
    rounds: int = 4
    steps_per_round: int = 30
    synth_steps: int = 5
    batch_size: int = 64
    lr: float = 3e-3
    temperature: float = 4.0
    reuse_pre: float = 1.0
    reuse_post: float = 1.0
    synthesize: bool = True
    eval_every: int = 2
    kd_real_epochs: int = 2


# A saved spec also records the synthesis settings its inversion method resolved to (the method's defaults
# included), under this key: a later change of a default then shows as a difference, not as a silent reuse.
RESOLVED = "synthesis"
SECTIONS = {"data": DataSpec, "teacher": TeacherSpec, "inversion": InversionSpec, "distillation": DistillationSpec}
# The spec's parts each stage's output depends on (the device is where it ran, not what it is).
STAGE_PARTS = {"teacher": ("data", "teacher"), "inversion": ("data", "teacher", "inversion", "seed"),
               "distillation": ("data", "teacher", "inversion", "distillation", "seed")}


@dataclass(frozen=True)
class RunSpec:
    data: DataSpec = DataSpec()
    teacher: TeacherSpec = TeacherSpec()
    inversion: InversionSpec = InversionSpec()
    distillation: DistillationSpec = DistillationSpec()
    seed: int = 0
    device: str = "cpu"

    @property
    def teacher_seed(self) -> int:
        return self.seed if self.teacher.seed is None else self.teacher.seed

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunSpec":
        """A spec from nested mappings; missing fields keep their defaults, unknown ones are refused."""
        check_fields(cls, values, "run spec section(s)")
        parts: dict[str, Any] = {}
        for name, value in values.items():
            if name in SECTIONS:
                section = SECTIONS[name]
                if isinstance(value, section):
                    parts[name] = value
                    continue
                if not isinstance(value, dict):
                    raise ValueError(f"run spec section {name!r} must be a mapping of "
                                     f"{sorted(f.name for f in dataclasses.fields(section))}, got {value!r}")
                check_fields(section, value, f"field(s) of the run spec's {name!r} section")
                parts[name] = section(**{k: _frozen(k, v) for k, v in value.items()})
            else:
                parts[name] = value
        return cls(**parts)

    def replace(self, **sections: dict[str, Any]) -> "RunSpec":
        """A copy with some fields changed: replace(inversion={"rounds": 12}, seed=1)."""
        values = self.to_dict()
        for name, change in sections.items():
            values[name] = {**values[name], **change} if name in SECTIONS else change
        return RunSpec.from_dict(values)

    def digest(self, stage: str) -> str:
        """A short name for what `stage`'s output depends on (8 hex digits of its hash)."""
        return hashlib.sha256(json.dumps(self.stage_part(stage), sort_keys=True).encode()).hexdigest()[:8]

    def stage_part(self, stage: str) -> dict[str, Any]:
        """What `stage`'s output depends on: a finished stage is reused only for a spec equal in these."""
        values = self.to_dict()
        out = {name: values[name] for name in STAGE_PARTS[stage]}
        out["teacher"]["seed"] = self.teacher_seed
        if "inversion" in out:
            out[RESOLVED] = self.synthesis()
        return out

    def synthesis(self) -> dict[str, Any]:
        """Every setting of the SynthConfig that the inversion's method and overrides resolve to."""
        return _settings(METHODS[self.inversion.method].replace(**self.inversion.weights()))

    @classmethod
    def saved_stage_part(cls, path: str | Path, stage: str) -> dict[str, Any]:
        """stage_part of the spec saved at `path` as it was saved: with the synthesis settings it recorded
        (not today's defaults), or without them where an older framilab saved none. A setting added to
        SynthConfig after the run takes its default, which by design does what framilab did before it."""
        path = Path(path)
        part = cls.load(path).stage_part(stage)
        if RESOLVED in part:
            recorded = yaml.safe_load(path.read_text()).get(RESOLVED)
            if recorded is None:
                del part[RESOLVED]
            else:
                part[RESOLVED] = {**_settings(SynthConfig()), **recorded}
        return part

    def save(self, path: str | Path) -> None:
        """Written atomically: tasks of one grid that share a stage folder save the same spec side by side."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        values = {**self.to_dict(), RESOLVED: self.synthesis()}
        text = yaml.safe_dump(values, sort_keys=False) if path.suffix in (".yaml", ".yml") \
            else json.dumps(values, indent=2)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(text)
        os.replace(partial, path)

    @classmethod
    def load(cls, path: str | Path) -> "RunSpec":
        path = Path(path)
        values = yaml.safe_load(path.read_text())
        if not isinstance(values, dict):
            raise ValueError(f"{path} holds no run spec (a mapping of {sorted(SECTIONS)}, seed, device)")
        values.pop(RESOLVED, None)
        return cls.from_dict(values)


def _settings(config: SynthConfig) -> dict[str, Any]:
    """Every setting of `config` as a saved spec holds it (JSON's types: lists, not tuples)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _frozen(name: str, value: Any) -> Any:
    """Lists from JSON/YAML as tuples (judges, a frames range), so specs compare and hash by value."""
    return tuple(value) if isinstance(value, list) and name in ("judges", "frames") else value
