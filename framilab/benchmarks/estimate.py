"""How long one benchmark cell takes at a budget on this machine, before committing hours to it.

Each stage runs a short probe with the budget's models, batch sizes and lengths on random spectrograms of
the data set's shape and class count (no data needed): two epochs of the teacher, the student from real
data, each judge and KD on real data on three batches' worth of clips, two inversion and two distillation
rounds. The second epoch's or round's seconds (the first warms kernels and caches up) are scaled to the
budget: epochs x the data set's training clips for training, rounds for inversion and distillation. Not
counted: reading the audio and extracting features (once per data set, then cached), and test-set
evaluations (a few per cent at the full budget).

A fold's teacher, student from real data and judges are trained once and shared by every method and seed
of that fold; an inversion is shared by the methods that distil from it (FRAMI with and without reuse).

Rerun: python -m framilab.benchmarks.estimate --datasets urbansound8k esc50 audiomnist [--device cuda]
Prints one JSON line per data set (stage hours, and the whole grid's at the protocol's folds and methods).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from .. import pipeline
from ..data import AudioDataset, Clip
from ..data.audiomnist import DEFAULT_CONFIG as AUDIOMNIST_CONFIG
from ..data.esc50 import DEFAULT_CONFIG as ESC_CONFIG
from ..data.fsdd import DEFAULT_CONFIG as FSDD_CONFIG
from ..data.synthetic import DEFAULT_CONFIG as SYNTHETIC_CONFIG
from ..data.urbansound8k import DEFAULT_CONFIG as US8K_CONFIG
from ..distillation import distill_on_real
from ..features import FeatureConfig
from ..kd import DistillLoss
from ..layout import Layout
from ..provenance import code_version
from .grid import FOLDS, METHODS, SETTINGS, Cell, cell_spec

# Training clips under the quick protocol, classes, and the loader's features: what a cell's time scales with.
SIZES: dict[str, tuple[int, int, FeatureConfig]] = {
    "synthetic": (1000, 10, SYNTHETIC_CONFIG),
    "fsdd": (2250, 10, FSDD_CONFIG),
    "esc10": (320, 10, ESC_CONFIG),
    "esc50": (1600, 50, ESC_CONFIG),
    "urbansound8k": (7895, 10, US8K_CONFIG),
    "audiomnist": (24000, 10, AUDIOMNIST_CONFIG),
}


def probe_splits(dataset: str, clips: int, seed: int = 0) -> tuple[AudioDataset, AudioDataset]:
    """Random log-Mel spectrograms (dB) of `dataset`'s shape and classes, about `clips` a split, every class
    equally often: a training and a test split."""
    _, classes, config = SIZES[dataset]
    gen = torch.Generator().manual_seed(seed)

    def split(name: str) -> AudioDataset:
        targets = [k for _ in range(max(1, clips // classes)) for k in range(classes)]
        features = [torch.randn(config.n_mels, config.frames(), generator=gen) * 10 - 40 for _ in targets]
        return AudioDataset(f"{dataset} probe {name}", [f"class {k}" for k in range(classes)],
                            [Clip(target=t) for t in targets], features, config)

    return split("train"), split("test")


def _steady(times: list[float]) -> float:
    """Seconds per epoch or round from cumulative times, leaving out the first (kernels and caches warm up)."""
    return (times[-1] - times[0]) / (len(times) - 1)


def estimate_cell(dataset: str, budget: str = "full", *, device: str = "cpu", probe_rounds: int = 2) -> dict[str, float]:
    """Expected wall seconds of each stage of a `dataset` cell at `budget` on `device`: each stage runs
    `probe_rounds` epochs or rounds on random data of the data set's shape, and the ones after the first are
    scaled to the budget."""
    train_clips, _, _ = SIZES[dataset]
    spec = cell_spec(Cell(dataset, None, 0, "frami"), budget, teacher_seed=0, device=device)
    d = spec.distillation
    probe = spec.replace(teacher={"epochs": probe_rounds, "student_epochs": probe_rounds},
                         inversion={"rounds": probe_rounds, "warmup": 0},
                         distillation={"rounds": probe_rounds, "eval_every": 1, "kd_real_epochs": 0})
    splits = probe_splits(dataset, 3 * max(spec.teacher.batch_size, d.batch_size))
    per_clip = train_clips / len(splits[0])
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        layout = Layout.chain(Path(folder))
        for part in pipeline.teacher_parts(probe):
            pipeline.teacher_part(probe, layout, part, splits=splits, progress=False)
        epochs = {"teacher": spec.teacher.epochs, "student_real": spec.teacher.student_epochs or spec.teacher.epochs}
        for part, metrics in _teacher_metrics(layout).items():
            seconds[part] = _steady([r["train_seconds"] for r in metrics["history"]]) * per_clip * epochs.get(
                part, spec.teacher.epochs)
        ticks: list[float] = []
        pipeline.inversion_stage(probe, layout, progress=False, on_round=lambda *_: ticks.append(time.perf_counter()))
        seconds["inversion"] = _steady(ticks) * spec.inversion.rounds
        ticks.clear()
        pipeline.distillation_stage(probe, layout, test_set=splits[1], progress=False,
                                    on_eval=lambda *_: ticks.append(time.perf_counter()))
        seconds["distillation"] = _steady(ticks) * d.rounds
        loss = DistillLoss(temperature=d.temperature, reuse_pre=d.reuse_pre, reuse_post=d.reuse_post)
        kd_real = distill_on_real(layout.teacher_checkpoint, *splits, student=d.student, epochs=probe_rounds,
                                  batch_size=d.batch_size, lr=d.lr, loss=loss, progress=False, device=device)
        seconds["kd_real"] = _steady(kd_real["epoch_seconds"]) * per_clip * d.kd_real_epochs
    return seconds


def _teacher_metrics(layout: Layout) -> dict[str, dict[str, Any]]:
    """The teacher stage's training metrics by part: the teacher, the student from real data, each judge."""
    found = {"teacher": layout.teacher_metrics, "student_real": layout.student_real_metrics}
    found.update({f"judge {p.parent.name}": p for p in sorted((layout.teacher / "judges").glob("*/*_metrics.json"))})
    return {part: json.loads(path.read_text()) for part, path in found.items() if path.is_file()}


def grid_hours(dataset: str, seconds: dict[str, float], methods: list[str] | tuple[str, ...] = METHODS,
               seeds: int = 1, folds: int | None = None, budget: str = "full") -> dict[str, float]:
    """Hours of a data set's whole grid from one cell's stage seconds: per fold the teacher parts once, per
    seed and synthesis method an inversion (as its steps' share of the probed FRAMI inversion's; for
    deepinversion_2k that counts its steps at a generator step's cost, an upper bound), per seed and method
    a distillation, KD on real data once a seed."""
    folds = folds or len(FOLDS.get(dataset, (None,)))
    teacher = sum(v for k, v in seconds.items() if k not in ("inversion", "distillation", "kd_real"))
    steps = {SETTINGS[m][0]: _inversion_steps(dataset, m, budget) for m in methods}
    inversions = sum(steps.values()) / _inversion_steps(dataset, "frami", budget)
    per_fold = teacher + seeds * (inversions * seconds["inversion"] + len(methods) * seconds["distillation"]
                                  + seconds["kd_real"])
    return {"folds": folds, "hours_per_fold": per_fold / 3600, "hours": folds * per_fold / 3600}


def _inversion_steps(dataset: str, method: str, budget: str) -> int:
    inversion = cell_spec(Cell(dataset, None, 0, method), budget, teacher_seed=0).inversion
    return inversion.rounds * inversion.steps_per_round


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["urbansound8k", "esc50", "audiomnist"], choices=sorted(SIZES))
    parser.add_argument("--budget", default="full")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", type=int, default=1, help="seeds in the grid whose total is estimated")
    args = parser.parse_args(argv)
    machine = (torch.cuda.get_device_name() if args.device.startswith("cuda")
               else f"{torch.get_num_threads()} CPU threads, {torch.backends.cpu.get_cpu_capability()}")
    rows = []
    for name in args.datasets:
        seconds = estimate_cell(name, args.budget, device=args.device)
        row = {"dataset": name, "budget": args.budget, "device": args.device, "machine": machine,
               "hours": {k: round(v / 3600, 3) for k, v in seconds.items()},
               "grid": {k: round(v, 2)
                        for k, v in grid_hours(name, seconds, seeds=args.seeds, budget=args.budget).items()},
               "seeds": args.seeds, "methods": len(METHODS), "code": code_version()}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
