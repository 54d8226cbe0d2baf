"""Wall time of one benchmark grid run two ways on this machine: cells side by side on Ray with one thread
each, against one cell at a time with every core's threads (the same Ray grid, each task asking for all CPUs).

Rerun (about 15 minutes on 2 cores at the classroom budget; nothing else should run meanwhile):
    python -m framilab.benchmarks.throughput --methods cmi frami_no_fic frami --seeds 0 1
Prints one JSON line: each way's wall seconds and student accuracies, and the ratio serial / parallel.
Each way starts from nothing (its own folder and feature cache), in the order given by --order.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ..provenance import code_version
from .table import run_benchmark


def timed_grid(root: Path, cpus_per_cell: float, methods: list[str], seeds: list[int], budget: str) -> dict[str, Any]:
    """Run the synthetic grid into `root` with a fresh feature cache; its wall seconds and cell accuracies."""
    os.environ["FRAMILAB_CACHE"] = str(root / "cache")
    t0 = time.perf_counter()
    row = run_benchmark(root / "runs", ["synthetic"], methods, budget=budget, seeds=seeds, cpus_per_cell=cpus_per_cell,
                        progress=False)["synthetic"]
    return {"seconds": time.perf_counter() - t0, "cpus_per_cell": cpus_per_cell,
            "accuracy": {m: cell.get("seeds", cell["accuracy"]) for m, cell in row["methods"].items()}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["cmi", "frami_no_fic", "frami"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--budget", default="classroom")
    parser.add_argument("--order", nargs=2, default=["serial", "parallel"], choices=["serial", "parallel"])
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    out: dict[str, Any] = {"cores": cores, "methods": args.methods, "seeds": args.seeds, "budget": args.budget,
                           "code": code_version()}
    with tempfile.TemporaryDirectory() as folder:
        for way in args.order:
            out[way] = timed_grid(Path(folder) / way, cores if way == "serial" else 1, args.methods, args.seeds,
                                  args.budget)
    out["ratio"] = out["serial"]["seconds"] / out["parallel"]["seconds"]
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
