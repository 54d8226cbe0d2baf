"""The inversion stage: rounds of synthesis into a pool, from a teacher checkpoint alone.

Each round synthesises one batch into the pool, then updates the "current student" by plain KD
on pool samples for a few steps, so the adversarial term has a student to play against (as in
CMI and Fast-Datafree). After every round the state (synthesizer, student, history) is
checkpointed atomically: a stopped run resumes where it was, with the pool it had.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from .checkpoint import TrainedModel, load_teacher, save_checkpoint, start_or_resume
from .diversity import confidence_and_entropy, frechet_distance, mean_cosine_diversity, precision_recall_coverage
from .judges import load_judges
from .kd import kd_loss
from .layout import INVERSION_CHECKPOINT, INVERSION_METRICS, POOL
from .models import build_model
from .provenance import code_version
from .randomness import callback_rng
from .synthesis import Pool, Synthesizer, make_synthesizer



@torch.no_grad()
def embed(teacher: TrainedModel, x: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher logits and embeddings of normalised spectrograms, in batches on the teacher's device;
    returned in host memory, where the pool and the diversity metrics live."""
    device = next(teacher.model.parameters()).device
    logits, embeddings = [], []
    for start in range(0, len(x), batch_size):
        out, _, e = teacher.model(x[start:start + batch_size].to(device))
        logits.append(out.cpu())
        embeddings.append(e.cpu())
    return torch.cat(logits), torch.cat(embeddings)


def judge_metrics(teacher: TrainedModel, judges: dict[str, TrainedModel], x: torch.Tensor, targets: torch.Tensor,
                  real: torch.Tensor | None = None) -> dict[str, Any]:
    """Transfer accuracy: the share of samples `x` (in the teacher's normalised units) that each judge
    assigns to its target class, and the mean over judges; with `real`, Fréchet distance and coverage
    in each judge's own embedding space (see judges.py)."""
    if not judges:
        return {}
    per_judge = {}
    for name, judge in judges.items():
        logits, e = embed(judge, _renormalize(x, teacher, judge))
        record = {"accuracy": float((logits.argmax(1) == targets).float().mean()),
                  "real_test_accuracy": judge.metrics.get("test_accuracy")}
        if real is not None:
            e_real = embed(judge, _renormalize(real, teacher, judge))[1]
            record["frechet_distance"] = frechet_distance(e_real, e)
            record.update(precision_recall_coverage(e_real, e))
        per_judge[name] = record
    return {"transfer_accuracy": sum(r["accuracy"] for r in per_judge.values()) / len(per_judge),
            "transfer": per_judge}


def _renormalize(x: torch.Tensor, source: TrainedModel, target: TrainedModel) -> torch.Tensor:
    """Spectrograms in `source`'s normalised units, in `target`'s (each fitted its own Normalizer)."""
    device = source.normalizer.mean.device
    return target.normalizer(source.normalizer.denormalize(x.to(device)).to(target.normalizer.mean.device)).cpu()


def pool_metrics(teacher: TrainedModel, pool: Pool, real: torch.Tensor | None = None,
                 recent: int | None = None, judges: dict[str, TrainedModel] | None = None) -> dict[str, Any]:
    """Diversity and teacher agreement on the pool (or its last `recent` samples), transfer accuracy to
    `judges`, and distances to real data's embeddings when `real` (normalised spectrograms) is given."""
    x, targets, _ = pool.tensors()
    if recent:
        x, targets = x[-recent:], targets[-recent:]
    logits, e = embed(teacher, x)
    out = {"pool_size": len(pool), "teacher_accuracy_on_pool": float((logits.argmax(1) == targets).float().mean()),
           "diversity": mean_cosine_diversity(e, targets), **confidence_and_entropy(logits)}
    if real is not None:
        _, e_real = embed(teacher, real)
        out["frechet_distance"] = frechet_distance(e_real, e)
        out.update(precision_recall_coverage(e_real, e))
    out.update(judge_metrics(teacher, judges or {}, x, targets, real))
    return out


def _student_update(student: torch.nn.Module, optimizer: torch.optim.Optimizer, teacher: TrainedModel, pool: Pool,
                    steps: int, batch_size: int, generator: torch.Generator) -> float:
    student.train()
    loss = torch.zeros(())
    for _ in range(steps):
        x, _, _ = pool.sample(batch_size, generator, next(student.parameters()).device)
        with torch.no_grad():
            teacher_logits = teacher.model(x)[0]
        loss = kd_loss(student(x)[0], teacher_logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.item()


def run_inversion(teacher_path: str | Path, run_dir: str | Path, method: str = "frami", *, rounds: int = 20,
                  batch_size: int = 64, frames: int | tuple[int, int] | None = None, seed: int = 0,
                  student: str = "resnet-student", student_steps: int = 5, real: torch.Tensor | None = None,
                  resume: bool = False, overwrite: bool = False, progress: bool = True, device: str = "cpu",
                  use_judges: bool = True, on_round: Callable[[dict[str, Any], Synthesizer], None] | None = None,
                  **weights: Any) -> dict[str, Any]:
    """Run `rounds` rounds of `method` on the teacher at `teacher_path`; the pool goes to run_dir/pool.

    `weights` override the method's SynthConfig (e.g. fic=1.0, steps=20). `real` (normalised
    spectrograms of a real set) adds Fréchet distance and coverage to the metrics; judges found beside the
    teacher (judges.py; `use_judges`) add transfer accuracy, every round and at the end. Writes
    run_dir/inversion_metrics.json and returns the same dict. `seconds` counts synthesis alone;
    the current student's KD updates are in `student_seconds`.
    """
    run_dir = Path(run_dir)
    teacher = load_teacher(teacher_path, device)
    judges = load_judges(teacher, device) if use_judges else {}
    ckpt_path = run_dir / INVERSION_CHECKPOINT
    state = _start_or_resume(run_dir, ckpt_path, resume, overwrite, method)
    pool = Pool(run_dir / POOL, {"teacher_fingerprint": teacher.fingerprint(), "teacher_path": str(teacher_path),
                                   "method": method, "feature_config": teacher.feature_config.to_dict(),
                                   "classes": teacher.classes})
    torch.manual_seed(seed)
    student_model = build_model(student, teacher.feature_config.n_mels, len(teacher.classes)).to(device)
    student_optimizer = torch.optim.Adam(student_model.parameters(), lr=1e-3)
    synth = make_synthesizer(method, teacher, pool, student=student_model, batch_size=batch_size, frames=frames,
                             seed=seed, device=device, **weights)
    history: list[dict[str, Any]] = []
    seconds, student_seconds = 0.0, 0.0
    if state is not None:
        synth.load_state_dict(state["synthesizer"])
        student_model.load_state_dict(state["student"])
        student_optimizer.load_state_dict(state["student_optimizer"])
        history, seconds, student_seconds = state["history"], state["seconds"], state["student_seconds"]
        pool.truncate(state["pool_shards"])
    bar = tqdm(range(synth.round, rounds), desc=f"inversion {method}", disable=not progress,
               initial=synth.round, total=rounds)
    for _ in bar:
        t0 = time.perf_counter()
        record = synth.synthesize()
        t1 = time.perf_counter()
        if student_steps and len(pool):
            record["student_kd_loss"] = _student_update(student_model, student_optimizer, teacher, pool,
                                                        student_steps, batch_size, synth.gen)
        seconds += t1 - t0
        student_seconds += time.perf_counter() - t1
        record.update(round=synth.round, seconds=seconds, pool_size=len(pool))
        if len(pool):
            record.update(pool_metrics(teacher, pool, recent=batch_size * 4, judges=judges))
        history.append(record)
        bar.set_postfix(agree=f"{record['teacher_agreement']:.2f}", pool=len(pool))
        save_checkpoint({"kind": "inversion", "synthesizer": synth.state_dict(), "student": student_model.state_dict(),
                         "student_optimizer": student_optimizer.state_dict(), "history": history, "seconds": seconds,
                         "student_seconds": student_seconds, "pool_shards": len(pool.shards), "method": method},
                        ckpt_path)
        if on_round is not None:
            with callback_rng(device):
                on_round(record, synth)
    steps = synth.config.steps * rounds
    metrics = {"method": method, "config": asdict(synth.config), "rounds": rounds, "batch_size": batch_size,
               "frames": list(synth.frames_range), "seconds": seconds, "student_seconds": student_seconds,
               "samples": len(pool),
               "samples_per_second": len(pool) / max(seconds, 1e-9), "ms_per_step": 1000 * seconds / max(steps, 1),
               "teacher_fingerprint": teacher.fingerprint(), "pool_dir": str(pool.root), "history": history,
               "code": code_version(), **pool_metrics(teacher, pool, real, judges=judges)}
    (run_dir / INVERSION_METRICS).write_text(json.dumps(metrics, indent=2))
    return metrics


def run_variants(teacher_path: str | Path, root: str | Path, variants: dict[str, dict[str, Any]], *,
                 method: str = "frami", rounds: int = 3, progress: bool = True,
                 **options: Any) -> dict[str, dict[str, Any]]:
    """Short runs of `method` with each variant's weight overrides, from the same seed, into root/<i>/.

    For side-by-side figures of what each loss term does; earlier variant runs are replaced.
    """
    results = {}
    bar = tqdm(total=len(variants) * rounds, desc="loss-term gallery", unit="round", disable=not progress)
    for i, (name, weights) in enumerate(variants.items()):
        bar.set_postfix_str(name)
        results[name] = run_inversion(teacher_path, Path(root) / f"variant_{i}", method, rounds=rounds, overwrite=True,
                                      progress=False, on_round=lambda *_: bar.update(), **options, **weights)
    bar.close()
    return results


def _start_or_resume(run_dir: Path, ckpt_path: Path, resume: bool, overwrite: bool,
                     method: str) -> dict[str, Any] | None:
    state = start_or_resume(ckpt_path, "inversion", (run_dir / INVERSION_METRICS,), partial=(run_dir / POOL,),
                            resume=resume, overwrite=overwrite, what="an inversion run (pool and checkpoint)")
    if state is not None and state["method"] != method:
        raise ValueError(f"cannot resume {ckpt_path} with method {method!r}: it was made by {state['method']!r}")
    return state
