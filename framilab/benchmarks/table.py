"""The benchmark table: every data-free method against the real-data references, on each data set.

Each cell (data set x method x seed, and fold in a cross-validation) is a run of the library's
pipeline (pipeline.py) at the same budget, run as Ray tasks (grid.py): a teacher per data set (with the
student from real data and the judges), an inversion per synthesis method and seed, a distillation per
cell. FRAMI without hidden-state reuse distils from FRAMI's own inversion with reuse_pre = reuse_post = 0,
so the two differ in that alone. Finished cells are kept: an interrupted benchmark picks up where it
stopped, here or on another machine that sees the same folder.

Several seeds repeat synthesis and distillation (generator, noise, student, batch order, the KD-on-real
student) on one teacher per data set, trained with the first seed: the methods are compared on the same
teacher, seed by seed, and each cell reports the mean over its seeds, their spread and each seed's number.

A data set's row is one teacher with its seeds and says how it was made (its `run` record: code, hosts,
when its last cell finished). The whole table takes more hours on 2 cores than one session gives: with
`archive`, every finished cell is also copied into a tracked folder (archive.py) as it finishes and
restored from there at the start, so the grid resumes in a later session or on another machine. A run of
some data sets replaces their rows in results.json and keeps the others' rows as they were.

Rerun: make benchmark   (notebook 04 through papermill at FULL_RUN, every data set and method, on a local
Ray; `--classroom` keeps the notebook's own defaults; `-p` overrides either, e.g.
make benchmark BENCHMARK_ARGS='-p datasets ["esc10"]' to rerun one data set's row, or
BENCHMARK_ARGS='-p address auto' to run the cells on the Ray cluster this machine belongs to)
Writes figures/results.md, figures/results.json, figures/accuracy_vs_time.png, figures/per_class_accuracy.png,
figures/samples_<dataset>.png.
"""
from __future__ import annotations

import argparse
import ast
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from ..layout import TEACHER, metrics_name
from ..paths import resolve
from ..pipeline import spec_in
from ..run import parse_value, run_stage, valid_parameters
from ..spec import RunSpec
from . import archive as archived, grid
from .grid import DATASETS, METHODS, Cell, Folds, as_seeds, cell_folder, cell_spec, run_grid
from .results import collect

# What `python -m framilab.benchmarks.table` (make benchmark) passes to notebook 04: the committed table.
FULL_RUN: dict[str, Any] = {"datasets": list(DATASETS), "methods": list(METHODS), "budget": "full",
                            "teachers": None, "root": "runs/benchmark", "figures_dir": "figures",
                            "archive": "figures/benchmark_cells"}


def run_benchmark(root: str | Path, datasets: list[str] | tuple[str, ...] = DATASETS,
                  methods: list[str] | tuple[str, ...] = METHODS, *, budget: str = "full",
                  seeds: int | list[int] = 0, data_roots: dict[str, str | None] | None = None,
                  folds: Folds = "quick", teachers: dict[str, str | Path] | None = None,
                  address: str | None = None, cpus_per_cell: float = 1, gpus_per_cell: float | None = None,
                  archive: str | Path | None = None, collect_only: bool = False,
                  progress: bool = True) -> dict[str, Any]:
    """Run every unfinished cell under `root` on Ray (grid.run_grid) and return the collected results.

    `teachers` maps a data set to a finished teacher run (notebook 01's `run_dir`) that its
    quick-protocol cells copy instead of training a teacher of their own (a folder without a finished run
    is passed over and a teacher is trained). `folds` (grid.folds): "quick", "all" (the official
    cross-validation, averaged over the folds) or per data set; each fold trains a teacher. A failing task is
    reported in a warning with its error; the other cells go on and the table holds those that finished.
    `archive` (a tracked folder, archive.py): finished cells kept there are restored first, and each cell
    is kept there as it finishes, so a later session resumes the grid. `collect_only`: tabulate what has
    finished (under `root` and in `archive`) without running anything.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    seeds, root = as_seeds(seeds), Path(root)
    reused = {name: _reuse_teacher(resolve(source), cell_folder(root, name, None) / "teacher", name)
              for name, source in (teachers or {}).items() if name in datasets and source is not None}
    cells = [Cell(name, fold, seed, method) for name in datasets for fold in grid.folds(name, folds)
             for seed in seeds for method in methods]
    specs = {cell: cell_spec(cell, budget, seeds[0], (data_roots or {}).get(cell.dataset),
                             reused.get(cell.dataset) if cell.fold is None else None) for cell in cells}
    keep = None
    if archive is not None:
        archive = resolve(archive)
        restored = archived.restore(archive, root, cells, specs)
        print(f"archive {archive}: {len(restored)} finished piece(s) restored")

        def keep(_: Cell | None = None) -> None:
            for piece in archived.keep(root, archive, cells, specs):
                print(f"archive: kept {piece}")

        keep()
    if collect_only:
        return collect(root, datasets, methods, folds, seeds)
    errors = run_grid(root, cells, specs, address=address, cpus_per_cell=cpus_per_cell,
                      gpus_per_cell=gpus_per_cell, progress=progress, on_finished=keep)
    if errors:
        warnings.warn(f"{len(errors)} benchmark task(s) failed; the table leaves their cells out:\n"
                      + "\n".join(f"  {task}: {error}" for task, error in errors.items()), stacklevel=2)
    return collect(root, datasets, methods, folds, seeds)


def _reuse_teacher(source: Path, target: Path, dataset: str) -> RunSpec | None:
    """Copy the finished teacher run in `source` (teacher, student from real data, judges, spec) to `target`
    unless `target` holds one already; its spec, which the data set's cells then follow. None, with a note,
    where `source` holds no finished run."""
    if (target / metrics_name(TEACHER)).is_file():
        return spec_in(target)
    metrics = source / metrics_name(TEACHER)
    if not metrics.is_file():
        print(f"no finished teacher run in {source}: training a teacher for {dataset}")
        return None
    trained_on = json.loads(metrics.read_text()).get("dataset")
    if trained_on != dataset:
        raise ValueError(f"{source} holds a teacher trained on {trained_on!r}, not {dataset!r}: give that data "
                         f"set's own teacher run in `teachers`, or leave {dataset!r} out of it to train one")
    spec = spec_in(source)
    if spec is None:
        raise ValueError(f"{source} holds a teacher run without the spec that made it (an older framilab's): "
                         f"retrain it with notebook 01, or leave {dataset!r} out of `teachers` to train one")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    print(f"{dataset}: reusing the teacher run in {source}")
    return spec


def main(argv: list[str] | None = None) -> None:
    """Execute notebook 04 through papermill into <root>/04_benchmark.ipynb."""
    parser = argparse.ArgumentParser(prog="python -m framilab.benchmarks.table", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help=f"a notebook 04 parameter (repeatable): {sorted(valid_parameters('benchmark'))}")
    parser.add_argument("--classroom", action="store_true",
                        help="the notebook's own defaults instead of FULL_RUN (the committed table)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    params = {**({} if args.classroom else FULL_RUN),
              **{name: parse_value(value) for name, value in args.parameter}}
    root = resolve(params.get("root", ast.literal_eval(valid_parameters("benchmark")["root"])))
    try:
        out = run_stage("benchmark", params, root / "04_benchmark.ipynb", progress=not args.quiet)
    except ValueError as err:
        parser.error(str(err))
    print(f"executed notebook: {out}")
    print((root / "results.md").read_text())


if __name__ == "__main__":
    main()
