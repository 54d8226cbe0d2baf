"""The distillation stage: a student learns from the teacher alone, on the pool, with hidden-state reuse.

Synthesis and distillation alternate in rounds (as in CMI): each round the synthesizer, continuing
from the inversion run's generator, adds a batch made against the current student, then the
student takes `steps_per_round` steps on pool samples. Every `eval_every` rounds the student is
measured on a real test split it never trains on. State is checkpointed every round.
Pool samples are augmented on the way to the student (`augment.student_augment`, the same for every
method and for the KD-on-real reference): a few thousand synthetic samples are otherwise learned by heart.

The same loss and student also run on real data (`distill_on_real`): the "KD on real data" reference.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from .augment import student_augment
from .checkpoint import TrainedModel, load_checkpoint, load_teacher, model_payload, save_checkpoint, start_or_resume
from .data import AudioDataset
from .layout import DISTILL_CHECKPOINT, DISTILL_METRICS, INVERSION_CHECKPOINT, INVERSION_METRICS, POOL, STUDENT
from .kd import DistillLoss, HiddenStateReuse, distillation_loss
from .models import build_model
from .models.folding import fold_batchnorm
from .provenance import code_version, host, utc
from .randomness import callback_rng
from .synthesis import Pool, PoolError, make_synthesizer
from .train import evaluate

def check_eval_set(teacher: TrainedModel, eval_set: AudioDataset | None) -> None:
    if eval_set is None:
        return
    if eval_set.classes != teacher.classes:
        raise ValueError(f"the evaluation set's classes {eval_set.classes} do not match the teacher's "
                         f"{teacher.classes}: evaluate on the data set the teacher was trained on")
    if eval_set.config != teacher.feature_config:
        raise ValueError("the evaluation set was made with another FeatureConfig than the teacher's; load it with "
                         "config=teacher.feature_config")


class Student:
    """A student model, its hidden-state projections and their optimiser, trained on teacher outputs."""

    def __init__(self, preset: str, teacher: TrainedModel, loss: DistillLoss, lr: float, device: str):
        self.preset = preset
        self.device = torch.device(device)
        self.teacher = teacher
        self.frozen_teacher = fold_batchnorm(teacher.model)
        self.loss = loss
        self.model = build_model(preset, teacher.feature_config.n_mels, len(teacher.classes)).to(device)
        uses_reuse = loss.reuse_pre > 0 or loss.reuse_post > 0
        self.reuse = HiddenStateReuse(self.model, teacher.model).to(device) if uses_reuse else None
        params = list(self.model.parameters()) + (list(self.reuse.parameters()) if self.reuse else [])
        self.optimizer = torch.optim.Adam(params, lr=lr)

    def step(self, x: torch.Tensor) -> dict[str, float]:
        """One update on a batch of normalised spectrograms; returns each loss term."""
        self.model.train()
        with torch.no_grad():
            teacher_out = self.frozen_teacher(x)
        total, terms = distillation_loss(self.model(x), teacher_out, self.loss, self.reuse)
        if not torch.isfinite(total):
            raise FloatingPointError(f"distillation loss became {total.item()} ({terms}); "
                                     "lower lr or the reuse weights")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return terms

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "reuse": None if self.reuse is None else self.reuse.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.reuse is not None:
            self.reuse.load_state_dict(state["reuse"])

    def save(self, path: Path, metrics: dict[str, Any]) -> None:
        """A self-describing student checkpoint (framilab.checkpoint.load_trained reads it)."""
        t = self.teacher
        save_checkpoint({**model_payload(self.model, self.preset, {}, t.normalizer, t.feature_config, t.classes,
                                         t.dataset), "metrics": metrics}, path)


def run_distillation(teacher_path: str | Path, inversion_dir: str | Path, run_dir: str | Path, *,
                     student: str = "resnet-student", method: str | None = None, rounds: int = 40,
                     steps_per_round: int = 20, batch_size: int = 64, loss: DistillLoss = DistillLoss(),
                     lr: float = 3e-3, synthesize: bool = True, augment: bool = True,
                     frames: int | tuple[int, int] | None = None, eval_set: AudioDataset | None = None,
                     eval_every: int = 5, seed: int = 0, resume: bool = False, overwrite: bool = False,
                     progress: bool = True, device: str = "cpu",
                     on_eval: Callable[[dict[str, Any]], None] | None = None, **synth_weights: Any) -> dict[str, Any]:
    """Distil `student` from the teacher on the pool of the inversion run in `inversion_dir`, into `run_dir`.

    The inversion folder is only read: distillation starts its own pool (run_dir/pool) from the inversion
    checkpoint's shards and adds to it. With `synthesize`, each round first adds a batch from `method`
    (default: the pool's own), its generator continued from the inversion checkpoint, `frames` long (default:
    the inversion run's). Writes run_dir/student.pt and run_dir/distill_metrics.json; returns the metrics.
    """
    inversion_dir, run_dir = Path(inversion_dir), Path(run_dir)
    if inversion_dir.resolve() == run_dir.resolve():
        raise ValueError(f"distillation writes a folder of its own, not the inversion run's ({inversion_dir}): "
                         "give run_dir another folder, e.g. a 'distillation' folder beside it")
    teacher = load_teacher(teacher_path, device)
    check_eval_set(teacher, eval_set)
    source = Pool(inversion_dir / POOL)
    source.check_teacher(teacher.fingerprint())
    state = _start_or_resume(run_dir, resume, overwrite)
    inversion = _inversion_state(inversion_dir)
    if state is None:
        pool = source.fork(run_dir / POOL, None if inversion is None else inversion["pool_shards"])
    else:
        pool = Pool(run_dir / POOL, {"teacher_fingerprint": teacher.fingerprint()})
        pool.truncate(state["pool_shards"])
    if not synthesize and len(pool) == 0:
        raise PoolError(f"{source.root} is empty and synthesize=False: run the inversion stage first")
    method = method or pool.meta.get("method", "frami")
    torch.manual_seed(seed)
    learner = Student(student, teacher, loss, lr, device)
    frames = frames or _inversion_frames(inversion_dir)
    synth_weights = {**_inversion_config(inversion_dir, method), **synth_weights}
    synth = make_synthesizer(method, teacher, pool, student=learner.model, batch_size=batch_size, frames=frames,
                             seed=seed, device=device, **synth_weights) if synthesize else None
    gen = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []
    start, synth_seconds, distill_seconds = 0, 0.0, 0.0
    if state is not None:
        learner.load_state_dict(state["student"])
        if synth is not None:
            synth.load_state_dict(state["synthesizer"])
        gen.set_state(state["rng"])
        history, start = state["history"], state["round"]
        synth_seconds, distill_seconds = state["synthesis_seconds"], state["distill_seconds"]
    elif synth is not None and inversion is not None and inversion["method"] == method:
        synth.load_state_dict(inversion["synthesizer"])
    bar = tqdm(range(start, rounds), desc=f"distil {student} ({method})", disable=not progress,
               initial=start, total=rounds)
    for round_index in bar:
        t0 = time.perf_counter()
        if synth is not None:
            synth.synthesize()
        t1 = time.perf_counter()
        terms: dict[str, float] = {}
        for _ in range(steps_per_round):
            x, _, _ = pool.sample(batch_size, gen, learner.device)
            terms = learner.step(student_augment(x, gen) if augment else x)
        t2 = time.perf_counter()
        synth_seconds += t1 - t0
        distill_seconds += t2 - t1
        record = {"round": round_index + 1, "pool_size": len(pool), "synthesis_seconds": synth_seconds,
                  "distill_seconds": distill_seconds, **terms}
        if eval_set is not None and ((round_index + 1) % eval_every == 0 or round_index + 1 == rounds):
            record["student_accuracy"] = evaluate(learner.model, teacher.normalizer, eval_set)["accuracy"]
            bar.set_postfix(acc=f"{record['student_accuracy']:.3f}")
            if on_eval is not None:
                with callback_rng(device):
                    on_eval(record)
        history.append(record)
        save_checkpoint({"kind": "distillation", "student": learner.state_dict(),
                         "synthesizer": None if synth is None else synth.state_dict(), "rng": gen.get_state(),
                         "pool_shards": len(pool.shards), "history": history, "round": round_index + 1,
                         "synthesis_seconds": synth_seconds, "distill_seconds": distill_seconds},
                        run_dir / DISTILL_CHECKPOINT)
    metrics = {"student": student, "method": method, "rounds": rounds, "steps_per_round": steps_per_round,
               "lr": lr, "augment": augment, "loss": dataclasses.asdict(loss), "pool_size": len(pool), "synthesis_seconds": synth_seconds,
               "distill_seconds": distill_seconds, "teacher_fingerprint": teacher.fingerprint(), "seed": seed,
               "synthesis_config": None if synth is None else dataclasses.asdict(synth.config),
               "inversion_dir": str(inversion_dir),
               "code": code_version(), "host": host(), "finished": utc(), "history": history}
    if eval_set is not None:
        final = evaluate(learner.model, teacher.normalizer, eval_set)
        metrics.update(student_accuracy=final["accuracy"], per_class_accuracy=final["per_class_accuracy"],
                       confusion=final["confusion"],
                       teacher_accuracy=evaluate(teacher.model, teacher.normalizer, eval_set)["accuracy"])
    learner.save(run_dir / STUDENT, metrics)
    (run_dir / DISTILL_METRICS).write_text(json.dumps(metrics, indent=2))
    return metrics


def distill_on_real(teacher_path: str | Path, train_set: AudioDataset, test_set: AudioDataset, *,
                    student: str = "resnet-student", loss: DistillLoss = DistillLoss(), epochs: int = 20,
                    batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
                    progress: bool = True, device: str = "cpu") -> dict[str, Any]:
    """The 'KD on real data' reference: the same student, loss and augmentation, on the real training clips."""
    teacher = load_teacher(teacher_path, device)
    check_eval_set(teacher, train_set)
    check_eval_set(teacher, test_set)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    learner = Student(student, teacher, loss, lr, device)
    x_all = teacher.normalizer(train_set.tensors()[0].to(device))
    t0 = time.perf_counter()
    epoch_seconds = []
    for _ in tqdm(range(epochs), desc=f"KD on real data ({student})", disable=not progress):
        order = torch.randperm(len(x_all), generator=gen)
        for start in range(0, len(order), batch_size):
            learner.step(student_augment(x_all[order[start:start + batch_size]], gen))
        epoch_seconds.append(time.perf_counter() - t0)
    result = evaluate(learner.model, teacher.normalizer, test_set)
    return {"student": student, "accuracy": result["accuracy"], "per_class_accuracy": result["per_class_accuracy"],
            "seconds": time.perf_counter() - t0, "epoch_seconds": epoch_seconds, "epochs": epochs,
            "loss": dataclasses.asdict(loss)}


def _inversion_frames(inversion_dir: Path) -> tuple[int, int] | None:
    """The frames range the inversion run in `inversion_dir` synthesised, so new batches match the pool."""
    path = inversion_dir / INVERSION_METRICS
    if not path.is_file():
        return None
    low, high = json.loads(path.read_text())["frames"]
    return int(low), int(high)


def _inversion_config(inversion_dir: Path, method: str) -> dict[str, Any]:
    """The SynthConfig the inversion run in `inversion_dir` used, when it ran `method`: distillation's new
    batches continue with the same loss weights and views (an ablation such as fic=0 given to the inversion
    holds for both stages); only what the caller passes explicitly (e.g. steps) differs."""
    path = inversion_dir / INVERSION_METRICS
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    return dict(saved["config"]) if saved.get("method") == method and "config" in saved else {}


def _inversion_state(inversion_dir: Path) -> dict[str, Any] | None:
    """The inversion run's checkpoint (its pool's shard count and generator), None for a pool without one."""
    path = inversion_dir / INVERSION_CHECKPOINT
    return load_checkpoint(path, kind="inversion") if path.is_file() else None


def _start_or_resume(run_dir: Path, resume: bool, overwrite: bool) -> dict[str, Any] | None:
    return start_or_resume(run_dir / DISTILL_CHECKPOINT, "distillation", (run_dir / DISTILL_METRICS,),
                           partial=(run_dir / POOL,), resume=resume, overwrite=overwrite, what="a distillation run")
