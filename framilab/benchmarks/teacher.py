"""Teacher and student-from-real-data accuracy and CPU time per data set, side by side.

Rerun: FRAMILAB_DATA=../shared/data python -m framilab.benchmarks.teacher [--datasets synthetic fsdd esc10]
Prints one table from one run (same seed, same machine) and writes runs/bench-teacher/results.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ..data import load_splits
from ..recipes import DEFAULT_STUDENT, DEFAULT_TEACHER, train_by_recipe


def run(datasets: list[str], out: Path, seed: int, teacher: str, student: str) -> dict:
    results = {}
    for name in datasets:
        t0 = time.perf_counter()
        splits = load_splits(name)
        data_seconds = time.perf_counter() - t0
        row = {"n_train": len(splits[0]), "n_test": len(splits[1]), "data_seconds": data_seconds}
        for role, preset in (("teacher", teacher), ("student_real", student)):
            metrics = train_by_recipe(preset, name, out / name, splits, seed=seed, output_name=role, overwrite=True)
            row[role] = {"preset": preset, "accuracy": metrics["test_accuracy"],
                         "train_minutes": metrics["train_seconds"] / 60, "params": metrics["params"],
                         "mflops_per_second_of_audio": metrics["mflops_per_second_of_audio"]}
        results[name] = row
        print(json.dumps({name: row}), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "fsdd", "esc10"])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-teacher"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--teacher", default=DEFAULT_TEACHER)
    parser.add_argument("--student", default=DEFAULT_STUDENT)
    args = parser.parse_args()
    results = run(args.datasets, args.out, args.seed, args.teacher, args.student)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n{'data set':<12}{'teacher':>10}{'min':>7}{'student(real)':>15}{'min':>7}"
          f"   (torch threads: {torch.get_num_threads()})")
    for name, row in results.items():
        print(f"{name:<12}{row['teacher']['accuracy']:>10.4f}{row['teacher']['train_minutes']:>7.2f}"
              f"{row['student_real']['accuracy']:>15.4f}{row['student_real']['train_minutes']:>7.2f}")


if __name__ == "__main__":
    main()
