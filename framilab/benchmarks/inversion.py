"""Every synthesis method on the same teachers, seed and machine: speed, agreement and diversity.

Rerun: FRAMILAB_DATA=../shared/data python -m framilab.benchmarks.inversion \\
           --teachers runs/bench-teacher/synthetic/teacher.pt runs/bench-teacher/fsdd/teacher.pt
(the teachers come from `python -m framilab.benchmarks.teacher`). Prints one table per teacher and
writes runs/bench-inversion/results.json. Real test clips are used only for the Fréchet distance
and coverage columns.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..checkpoint import load_teacher
from ..data import load_dataset
from ..inversion import run_inversion
from ..synthesis import METHODS

COLUMNS = ("ms_per_step", "samples_per_second", "teacher_accuracy_on_pool", "diversity", "frechet_distance", "coverage")


def run(teachers: list[Path], methods: list[str], rounds: int, warmup: int, batch_size: int, seed: int,
        out: Path) -> dict:
    results = {}
    for teacher_path in teachers:
        teacher = load_teacher(teacher_path)
        test = load_dataset(teacher.dataset, split="test", config=teacher.feature_config, progress=False)
        real = teacher.normalizer(test.tensors()[0])
        rows = {}
        for method in methods:
            metrics = run_inversion(teacher_path, out / teacher.dataset / method, method, rounds=rounds,
                                    batch_size=batch_size, seed=seed, real=real, overwrite=True, progress=False,
                                    warmup=0 if METHODS[method].kind == "inputs" else warmup)
            rows[method] = {k: metrics[k] for k in (*COLUMNS, "samples", "seconds")}
            print(json.dumps({teacher.dataset: {method: rows[method]}}), flush=True)
        results[teacher.dataset] = rows
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teachers", nargs="+", type=Path, required=True)
    parser.add_argument("--methods", nargs="+",
                        default=["deepinversion", "dafl", "cmi", "frami_no_fic", "frami_no_adv", "frami"])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3, help="generator rounds kept out of the pool")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-inversion"))
    args = parser.parse_args()
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {sorted(METHODS)}")
    results = run(args.teachers, args.methods, args.rounds, args.warmup, args.batch_size, args.seed, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n{args.rounds} rounds ({args.warmup} warm-up for generators) x batch {args.batch_size}, "
          f"seed {args.seed}, torch threads {torch.get_num_threads()}")
    for dataset, rows in results.items():
        print(f"\nteacher: {dataset}\n{'method':<15}" + "".join(f"{c:>26}" for c in COLUMNS))
        for method, row in rows.items():
            print(f"{method:<15}" + "".join(f"{row[c]:>26.4f}" for c in COLUMNS))
        if "frami" in rows and "deepinversion" in rows:
            ratio = rows["frami"]["ms_per_step"] / rows["deepinversion"]["ms_per_step"]
            print(f"FRAMI / DeepInversion cost per step: {ratio:.2f}x")


if __name__ == "__main__":
    main()
