"""The whole chain as library calls: teacher -> inversion -> distillation, one RunSpec, one Layout.

Each stage function saves the spec in its own folder, refuses a folder that holds another spec's run
(unless `overwrite` replaces it, or `set_aside` moves it to a folder of its own, as the notebooks do), and
with `resume` reads a finished stage back instead of running it again, or continues an unfinished one
from its checkpoint; `overwrite` wins over `resume`, so a caller can keep `resume=True` as its default.
The notebooks call these functions and draw their results; the benchmark grid calls them without notebooks.

    from framilab.pipeline import run_pipeline
    summary = run_pipeline(RunSpec.from_dict({"data": {"name": "fsdd"}}), "runs/fsdd")
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

from .checkpoint import load_teacher
from .data import AudioDataset, load_dataset, load_splits
from .distillation import distill_on_real, run_distillation
from .inversion import run_inversion
from .judges import JUDGE, judge_runs, judges_dir, train_judge
from .kd import DistillLoss
from .layout import SPEC, STUDENT_REAL, Layout, metrics_name
from .spec import RESOLVED, RunSpec
from .train import TrainConfig, train_classifier


class SpecMismatchError(ValueError):
    """A stage folder holds a run of another spec: reusing it would silently mix two experiments."""


def teacher_config(spec: RunSpec, frames_per_clip: Callable[[float], int]) -> TrainConfig:
    """The teacher's TrainConfig; `frames_per_clip(seconds)` turns the crop length into frames."""
    t = spec.teacher
    return TrainConfig(epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, seed=spec.teacher_seed,
                       mixup_alpha=t.mixup_alpha,
                       crop_frames=None if t.crop_seconds is None else frames_per_clip(t.crop_seconds))


def load_data(spec: RunSpec, progress: bool = False) -> tuple[AudioDataset, AudioDataset]:
    """The run's (train, test) splits."""
    return load_splits(spec.data.name, spec.data.root, progress=progress, **spec.data.options())


def teacher_parts(spec: RunSpec) -> list[str]:
    """The teacher stage's trainings, independent of each other: "teacher", "student_real" (where asked) and
    "judge <name>" for each judge; the grid runs them side by side."""
    judges = [f"judge {name}" for name, _, _ in judge_runs(spec.teacher.judges, spec.teacher_seed)]
    return ["teacher"] + (["student_real"] if spec.teacher.student is not None else []) + judges


def teacher_part(spec: RunSpec, layout: Layout, part: str, *,
                 splits: tuple[AudioDataset, AudioDataset] | None = None, resume: bool = False,
                 overwrite: bool = False, set_aside: bool = False, progress: bool = True,
                 on_epoch: Callable[[dict[str, Any]], None] | None = None) -> None:
    """One of teacher_parts(spec), into layout.teacher (a finished one is read back with `resume`)."""
    if part not in teacher_parts(spec):
        raise ValueError(f"unknown part {part!r} of the teacher stage; its parts: {teacher_parts(spec)}")
    resume = _claim(layout.teacher, spec, "teacher", resume, overwrite, set_aside)
    train, test = splits if splits is not None else load_data(spec)
    config = teacher_config(spec, train.config.frames)
    t = spec.teacher
    options = {"resume": resume, "overwrite": overwrite, "progress": progress, "device": spec.device}
    if part == "teacher" and not _finished(layout.teacher_metrics, resume):
        train_classifier(t.model, train, test, layout.teacher, config, on_epoch=on_epoch, **options)
    elif part == "student_real" and not _finished(layout.student_real_metrics, resume):
        train_classifier(t.student, train, test, layout.teacher,
                         dataclasses.replace(config, epochs=t.student_epochs or t.epochs), output_name=STUDENT_REAL,
                         **options)
    elif part.startswith("judge "):
        name, preset, seed = next(run for run in judge_runs(t.judges, spec.teacher_seed) if part == f"judge {run[0]}")
        train_judge(train, test, layout.teacher_checkpoint, config, name, preset, seed, **options)


def teacher_stage(spec: RunSpec, layout: Layout, *, splits: tuple[AudioDataset, AudioDataset] | None = None,
                  resume: bool = False, overwrite: bool = False, set_aside: bool = False, progress: bool = True,
                  on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train the teacher, the 'student from real data' reference and the judges into layout.teacher.

    Returns teacher_results: the teacher's metrics with the reference's and the judges' accuracies."""
    splits = splits if splits is not None else load_data(spec)
    for part in teacher_parts(spec):
        teacher_part(spec, layout, part, splits=splits, resume=resume, overwrite=overwrite, set_aside=set_aside,
                     progress=progress, on_epoch=on_epoch if part == "teacher" else None)
    return teacher_results(layout)


def teacher_results(layout: Layout) -> dict[str, Any]:
    """The finished teacher's metrics, with `student_real_accuracy` (and its per-class accuracy) and
    `judge_accuracy` {judge: test accuracy} where those were trained."""
    metrics = json.loads(layout.teacher_metrics.read_text())
    if layout.student_real_metrics.is_file():
        student = json.loads(layout.student_real_metrics.read_text())
        metrics.update(student_real_accuracy=student["test_accuracy"],
                       student_real_per_class_accuracy=student["per_class_accuracy"])
    judged = sorted(judges_dir(layout.teacher_checkpoint).glob(f"*/{metrics_name(JUDGE)}"))
    if judged:
        metrics["judge_accuracy"] = {p.parent.name: json.loads(p.read_text())["test_accuracy"] for p in judged}
    return metrics


def inversion_stage(spec: RunSpec, layout: Layout, *, real: Any = None, resume: bool = False,
                    overwrite: bool = False, set_aside: bool = False, progress: bool = True,
                    on_round: Callable[..., None] | None = None) -> dict[str, Any]:
    """Invert the teacher in layout.teacher into a pool in layout.inversion; `real` (normalised real
    spectrograms) adds Fréchet distance and coverage. Returns run_inversion's metrics."""
    _check_input(layout.teacher, spec, "teacher")
    resume = _claim(layout.inversion, spec, "inversion", resume, overwrite, set_aside)
    if _finished(layout.inversion_metrics, resume):
        return json.loads(layout.inversion_metrics.read_text())
    i = spec.inversion
    return run_inversion(layout.teacher_checkpoint, layout.inversion, i.method, rounds=i.rounds,
                         batch_size=i.batch_size, frames=i.frames, seed=spec.seed, student=i.student,
                         student_steps=i.student_steps, real=real, resume=resume, overwrite=overwrite,
                         progress=progress, device=spec.device, on_round=on_round, **i.weights())


def distillation_stage(spec: RunSpec, layout: Layout, *, test_set: AudioDataset | None = None,
                       resume: bool = False, overwrite: bool = False, set_aside: bool = False,
                       progress: bool = True,
                       on_eval: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Distil the student from the teacher on the inversion pool (read only) into layout.distillation,
    then the 'KD on real data' reference with the same loss (kd_real_epochs > 0). Returns the distillation
    metrics with `kd_real_accuracy` and its per-class accuracy added."""
    _check_input(layout.teacher, spec, "teacher")
    _check_input(layout.inversion, spec, "inversion")
    resume = _claim(layout.distillation, spec, "distillation", resume, overwrite, set_aside)
    d = spec.distillation
    teacher = load_teacher(layout.teacher_checkpoint)
    data = {"config": teacher.feature_config, "progress": False, **spec.data.options()}
    test_set = test_set or load_dataset(spec.data.name, spec.data.root, split="test", **data)
    loss = DistillLoss(temperature=d.temperature, reuse_pre=d.reuse_pre, reuse_post=d.reuse_post)
    if not _finished(layout.distill_metrics, resume):
        run_distillation(
        layout.teacher_checkpoint, layout.inversion, layout.distillation, student=d.student,
        method=spec.inversion.method, rounds=d.rounds, steps_per_round=d.steps_per_round, batch_size=d.batch_size,
        loss=loss, lr=d.lr, synthesize=d.synthesize, eval_set=test_set, eval_every=d.eval_every, seed=spec.seed,
            resume=resume, overwrite=overwrite, progress=progress, device=spec.device, on_eval=on_eval,
            steps=d.synth_steps)
    if overwrite:
        layout.kd_real_metrics.unlink(missing_ok=True)
    if d.kd_real_epochs and not layout.kd_real_metrics.is_file():
        train_set = load_dataset(spec.data.name, spec.data.root, split="train", **data)
        kd_real = distill_on_real(layout.teacher_checkpoint, train_set, test_set, student=d.student, loss=loss,
                                  epochs=d.kd_real_epochs, batch_size=d.batch_size, lr=d.lr, seed=spec.seed,
                                  progress=progress, device=spec.device)
        layout.kd_real_metrics.write_text(json.dumps(kd_real, indent=2))
    return distillation_results(layout)


def distillation_results(layout: Layout) -> dict[str, Any]:
    """The finished distillation's metrics, with `kd_real_accuracy` (and its per-class accuracy) where the
    'KD on real data' reference ran."""
    metrics = json.loads(layout.distill_metrics.read_text())
    if layout.kd_real_metrics.is_file():
        kd_real = json.loads(layout.kd_real_metrics.read_text())
        metrics.update(kd_real_accuracy=kd_real["accuracy"], kd_real_per_class_accuracy=kd_real["per_class_accuracy"])
    return metrics


def run_pipeline(spec: RunSpec, where: str | Path | Layout, *, resume: bool = True, overwrite: bool = False,
                 progress: bool = True) -> dict[str, Any]:
    """Run every stage of `spec` (finished stages are read back with `resume`) into `where` (a folder, or a
    Layout); returns the summary: the references, the pool's quality and the data-free student."""
    layout = where if isinstance(where, Layout) else Layout.chain(where)
    splits = load_data(spec, progress)
    taught = teacher_stage(spec, layout, splits=splits, resume=resume, overwrite=overwrite, progress=progress)
    inverted = inversion_stage(spec, layout, resume=resume, overwrite=overwrite, progress=progress)
    distilled = distillation_stage(spec, layout, test_set=splits[1], resume=resume, overwrite=overwrite,
                                   progress=progress)
    return summarize(taught, inverted, distilled)


def summarize(taught: dict[str, Any], inverted: dict[str, Any], distilled: dict[str, Any]) -> dict[str, Any]:
    """The numbers a row of the benchmark table is made of, from the stages' metrics (those of a stage
    that has not run are left out)."""
    out = {"teacher_accuracy": taught.get("test_accuracy"),
           "student_real_accuracy": taught.get("student_real_accuracy"),
           "teacher_accuracy_on_pool": inverted.get("teacher_accuracy_on_pool"),
           "pool_diversity": inverted.get("diversity"), "transfer_accuracy": inverted.get("transfer_accuracy"),
           "student_accuracy": distilled.get("student_accuracy"), "kd_real_accuracy": distilled.get("kd_real_accuracy")}
    return {key: value for key, value in out.items() if value is not None}


def _finished(path: Path, resume: bool) -> bool:
    """Whether a step finished and is read back (when resuming) instead of run."""
    return resume and path.is_file()


def _claim(folder: Path, spec: RunSpec, stage: str, resume: bool, overwrite: bool, set_aside: bool) -> bool:
    """Save `spec` in a stage's folder; a folder whose run had another spec is refused, replaced (`overwrite`)
    or moved to a sibling folder named after that spec (`set_aside`: nothing is lost). Returns whether the
    stage resumes: never when it overwrites."""
    differ = differing(folder, spec, stage) if set_aside and not overwrite else []
    if differ:
        digest = RunSpec.load(folder / SPEC).digest(stage)
        target, suffix = folder.with_name(f"{folder.name}-{digest}"), 1
        while target.exists():
            suffix += 1
            target = folder.with_name(f"{folder.name}-{digest}-{suffix}")
        folder.rename(target)
        print(f"{folder} held a {stage} run of other settings ({', '.join(differ)}): moved it to {target}")
    if not overwrite:
        _check_input(folder, spec, stage, required=False)
    if spec_in(folder) != spec:
        spec.save(folder / SPEC)
    return resume and not overwrite


def differing(folder: Path, spec: RunSpec, stage: str) -> list[str]:
    """The dotted fields in which the run saved in `folder` differs from `spec` in what `stage` depends on."""
    path = folder / SPEC
    if not path.is_file():
        return []
    saved, wanted = RunSpec.saved_stage_part(path, stage), spec.stage_part(stage)
    if RESOLVED not in saved:
        wanted.pop(RESOLVED, None)
    saved, wanted = _flat(saved), _flat(wanted)
    return sorted(key for key in saved.keys() | wanted.keys() if saved.get(key) != wanted.get(key))


def _check_input(folder: Path, spec: RunSpec, stage: str, required: bool = True) -> None:
    """The run in `folder` was made by a spec equal to `spec` in what `stage` depends on."""
    if not (folder / SPEC).is_file():
        if required and not folder.is_dir():
            raise FileNotFoundError(f"{folder} holds no {stage} run: run the {stage} stage first")
        return
    differ = differing(folder, spec, stage)
    if differ:
        raise SpecMismatchError(f"{folder} holds a {stage}-stage run of another spec (it differs in {differ}): give "
                                "this run another folder, or overwrite=True to replace that run")


def spec_in(folder: str | Path) -> RunSpec | None:
    """The spec saved with the run in `folder`, None where the run saved none."""
    path = Path(folder) / SPEC
    return RunSpec.load(path) if path.is_file() else None


def continue_spec(folder: str | Path, **changes: Any) -> RunSpec:
    """The spec of the earlier stage's run in `folder` with `changes` (RunSpec.replace) for a later stage: the
    later stage inherits the data and the teacher, whose seed stays the one it was trained with."""
    spec = spec_in(folder)
    if spec is None:
        raise FileNotFoundError(f"{folder} holds no finished earlier stage (no {SPEC}): run that stage into it "
                                "first (notebook 01 for the teacher, 02 for the inversion)")
    return spec.replace(teacher={"seed": spec.teacher_seed}).replace(**changes)


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"inversion": {"rounds": 3}} -> {"inversion.rounds": 3}"""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
