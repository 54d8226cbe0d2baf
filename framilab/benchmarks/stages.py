"""Seconds of each stage's inner loop at a small budget on `synthetic`: for comparing two commits.

Rerun from each checkout, one after the other on a quiet machine:
    PYTHONPATH=<checkout> python -m framilab.benchmarks.stages
Prints one JSON line: teacher training (3 epochs), inversion (3 FRAMI rounds), distillation (3 rounds
of 30 student steps with 5 synthesis steps), the two accuracies, the code version and torch threads.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ..data import load_splits
from ..distillation import run_distillation
from ..inversion import run_inversion
from ..provenance import code_version
from ..recipes import DEFAULT_TEACHER, recipe
from ..train import train_classifier


def run(root: Path, epochs: int = 3, rounds: int = 3, seed: int = 0) -> dict[str, Any]:
    train, test = load_splits("synthetic", progress=False)
    teacher = root / "teacher" / "teacher.pt"
    t0 = time.perf_counter()
    taught = train_classifier(DEFAULT_TEACHER, train, test, root / "teacher", recipe("synthetic", epochs=epochs, seed=seed),
                              progress=False)
    t1 = time.perf_counter()
    run_inversion(teacher, root / "inversion", "frami", rounds=rounds, warmup=0, seed=seed, progress=False)
    t2 = time.perf_counter()
    distilled = run_distillation(teacher, root / "inversion", root / "distillation", rounds=rounds,
                                 steps_per_round=30, steps=5, eval_set=test, seed=seed, progress=False)
    t3 = time.perf_counter()
    return {"teacher_seconds": t1 - t0, "inversion_seconds": t2 - t1, "distillation_seconds": t3 - t2,
            "teacher_accuracy": taught["test_accuracy"], "student_accuracy": distilled["student_accuracy"],
            "code": code_version(), "torch_threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(run(Path(folder), args.epochs, args.rounds, args.seed)))


if __name__ == "__main__":
    main()
