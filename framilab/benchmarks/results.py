"""The benchmark's numbers from the finished cells on disk: each cell's result, means and spreads over
seeds, FRAMI's paired differences, cross-validation averages over folds, and each data set's run record.

Reading is apart from running (grid.py): `collect` tabulates whatever has finished, on any machine
that sees the cells' folders.
"""
from __future__ import annotations

import json
import platform
import statistics
from pathlib import Path
from typing import Any

import torch

from ..provenance import utc
from . import grid
from .grid import DATASETS, METHODS, PAPER_DATASETS, SETTINGS, Cell, Folds, as_seeds, cell_layout, protocol


def cell_result(root: Path, cell: Cell) -> dict[str, Any]:
    """Accuracy, minutes and the accuracy-over-time curve of one finished cell."""
    layout = cell_layout(root, cell)
    inversion = json.loads(layout.inversion_metrics.read_text())
    distill = json.loads(layout.distill_metrics.read_text())
    kd_real = json.loads(layout.kd_real_metrics.read_text()) if layout.kd_real_metrics.is_file() else {}
    inversion_minutes = (inversion["seconds"] + inversion["student_seconds"]) / 60
    evaluated = [r for r in distill["history"] if "student_accuracy" in r]
    curve = [[inversion_minutes + (r["synthesis_seconds"] + r["distill_seconds"]) / 60, r["student_accuracy"]]
             for r in evaluated]
    synthesis_curve = [[(inversion["seconds"] + r["synthesis_seconds"]) / 60, r["student_accuracy"]] for r in evaluated]
    synthesis_minutes = (inversion["seconds"] + distill["synthesis_seconds"]) / 60
    distill_minutes = (inversion["student_seconds"] + distill["distill_seconds"]) / 60
    return {"accuracy": distill["student_accuracy"], "cpu_minutes": synthesis_minutes + distill_minutes,
            "synthesis_minutes": synthesis_minutes, "distill_minutes": distill_minutes,
            "synthesis_method": SETTINGS[cell.method][0], "curve": curve, "synthesis_curve": synthesis_curve,
            "kd_real": kd_real.get("accuracy"),
            **({"transfer": inversion["transfer_accuracy"]} if "transfer_accuracy" in inversion else {}),
            "per_class": distill.get("per_class_accuracy"), "kd_real_per_class": kd_real.get("per_class_accuracy")}


def collect(root: str | Path, datasets: list[str] | tuple[str, ...] = DATASETS,
            methods: list[str] | tuple[str, ...] = METHODS, folds: Folds = "quick",
            seeds: int | list[int] = 0) -> dict[str, Any]:
    """results.json's content from the finished cells under `root` (unfinished ones are left out, and
    results_markdown names them): each cell the mean over the seeds that finished it, with each seed's
    accuracy; the folds of a cross-validation (`folds`, grid.folds) are then averaged per data set,
    over the folds whose teacher finished (listed in the row's `folds`)."""
    root, seeds = Path(root), as_seeds(seeds)
    results: dict[str, Any] = {}
    for name in datasets:
        per_fold = []
        for fold in grid.folds(name, folds):
            layout = cell_layout(root, Cell(name, fold, 0, METHODS[0]))
            if not layout.teacher_metrics.is_file():
                continue
            teacher = json.loads(layout.teacher_metrics.read_text())
            student_real = _read(layout.student_real_metrics)
            per_seed = {seed: {m: cell_result(root, Cell(name, fold, seed, m)) for m in methods
                               if cell_layout(root, Cell(name, fold, seed, m)).distill_metrics.is_file()}
                        for seed in seeds}
            kd_cells = {seed: next((c for c in cells.values() if c["kd_real"] is not None), None)
                        for seed, cells in per_seed.items()}
            kd_cells = {seed: c for seed, c in kd_cells.items() if c is not None}
            kd_real = {seed: c["kd_real"] for seed, c in kd_cells.items()}
            kd_real_per_class = [c["kd_real_per_class"] for c in kd_cells.values() if c["kd_real_per_class"] is not None]
            per_fold.append({**({"fold": fold} if fold is not None else {}), "teacher": teacher["test_accuracy"],
                             "student_real": student_real.get("test_accuracy"),
                             "kd_real": statistics.fmean(kd_real.values()) if kd_real else None,
                             **({"kd_real_seeds": _by_seed(kd_real)} if len(seeds) > 1 else {}),
                             "per_class": {"teacher": teacher.get("per_class_accuracy"),
                                           "student_real": student_real.get("per_class_accuracy"),
                                           "kd_real": _mean_per_class(kd_real_per_class)},
                             "methods": {m: _over_seeds({s: cells[m] for s, cells in per_seed.items() if m in cells},
                                                        several=len(seeds) > 1)
                                         for m in methods if any(m in cells for cells in per_seed.values())},
                             "unfinished": [m for m in methods if not any(m in cells for cells in per_seed.values())]})
        if per_fold:
            row = per_fold[0] if len(per_fold) == 1 else _average(per_fold)
            results[grid.row_name(name, folds)] = {"dataset": name, **row}
    return results


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _by_seed(values: dict[int, float]) -> dict[str, float]:
    return {str(seed): value for seed, value in values.items()}


def _over_seeds(cells: dict[int, dict[str, Any]], several: bool) -> dict[str, Any]:
    """One method's cell over its finished seeds: mean accuracy and minutes, the mean accuracy-over-time
    curve; where `several` seeds were asked for, each seed's accuracy and (from two on) their sample
    standard deviation."""
    runs = list(cells.values())
    if len(runs) == 1 and not several:
        return {k: v for k, v in runs[0].items() if k not in ("kd_real", "kd_real_per_class")}
    out: dict[str, Any] = {key: statistics.fmean(c[key] for c in runs)
                           for key in ("accuracy", "cpu_minutes", "synthesis_minutes", "distill_minutes")}
    if len(runs) > 1:
        out["accuracy_sd"] = statistics.stdev(c["accuracy"] for c in runs)
    out["seeds"] = _by_seed({seed: c["accuracy"] for seed, c in cells.items()})
    out["synthesis_method"] = runs[0]["synthesis_method"]
    if all("transfer" in c for c in runs):
        out["transfer"] = statistics.fmean(c["transfer"] for c in runs)
    out["per_class"] = _mean_per_class([c["per_class"] for c in runs if c["per_class"] is not None])
    for key in ("curve", "synthesis_curve"):
        out[key] = _mean_curve([c[key] for c in runs])
    return out


def _mean_curve(curves: list[list[list[float]]]) -> list[list[float]]:
    """(minutes, accuracy) points averaged evaluation by evaluation, over the evaluations every curve has."""
    length = min(len(c) for c in curves)
    return [[statistics.fmean(c[i][j] for c in curves) for j in (0, 1)] for i in range(length)]


def _mean_per_class(runs: list[dict[str, float]]) -> dict[str, float] | None:
    """Each class's accuracy averaged over `runs` (None for none)."""
    return {name: statistics.fmean(r[name] for r in runs) for name in runs[0]} if runs else None


def paired_differences(row: dict[str, Any], against: str = "frami") -> dict[str, list[float]]:
    """`against`'s accuracy minus each other method's, seed by seed, over the seeds both finished."""
    mine = row["methods"].get(against, {}).get("seeds", {})
    return {method: [mine[s] - m["seeds"][s] for s in mine if s in m.get("seeds", {})]
            for method, m in row["methods"].items() if method != against and set(mine) & set(m.get("seeds", {}))}


def speed_race(row: dict[str, Any], fast: tuple[str, ...] = ("frami", "frami_short"),
               slow: str = "deepinversion_2k") -> dict[str, Any] | None:
    """How much less synthesis time the `fast` methods need than `slow` for `slow`'s student accuracy: `slow`'s
    (mean) accuracy and synthesis minutes, the synthesis minutes at the earliest evaluation on any of the fast
    methods' mean curves that reaches it and which method that was (None: never; `lower_bound` where that is
    the earliest evaluation of them all, which may have come later than needed), and their ratio. None where
    `slow` or every fast method has not finished."""
    methods = row["methods"]
    points = sorted((minutes, accuracy, name) for name in fast
                    for minutes, accuracy in methods.get(name, {}).get("synthesis_curve") or [])
    if slow not in methods or not points:
        return None
    target, slow_minutes = methods[slow]["accuracy"], methods[slow]["synthesis_minutes"]
    reached = next(((minutes, name) for minutes, accuracy, name in points if accuracy >= target), (None, None))
    return {"accuracy": target, "slow_minutes": slow_minutes, "fast_minutes": reached[0], "by": reached[1],
            "best": max(accuracy for _, accuracy, _ in points), "lower_bound": reached[0] == points[0][0],
            "times_less": None if reached[0] is None else slow_minutes / reached[0]}


def _average(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold-averaged row (per-class accuracies, learning curves and transfer too, where every fold has them);
    a method seen on every fold also gets each seed's fold-averaged accuracy (so paired differences pair seeds
    over the whole cross-validation) and their spread."""
    def mean(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else sum(values) / len(values)  # type: ignore[arg-type]

    def mean_per_class(values: list[dict[str, float] | None]) -> dict[str, float] | None:
        return None if any(v is None for v in values) else _mean_per_class(values)  # type: ignore[arg-type]

    out = {key: mean([f[key] for f in folds]) for key in ("teacher", "student_real", "kd_real")}
    out["per_class"] = {key: mean_per_class([f["per_class"][key] for f in folds])
                        for key in ("teacher", "student_real", "kd_real")}
    out["methods"] = {m: {k: mean([f["methods"][m][k] for f in folds])
                          for k in ("accuracy", "cpu_minutes", "synthesis_minutes", "distill_minutes")}
                      | {"per_class": mean_per_class([f["methods"][m].get("per_class") for f in folds])}
                      for m in folds[0]["methods"] if all(m in f["methods"] for f in folds)}
    for m, cell in out["methods"].items():
        cells = [f["methods"][m] for f in folds]
        for key in ("curve", "synthesis_curve"):
            if all(c.get(key) for c in cells):
                cell[key] = _mean_curve([c[key] for c in cells])
        if all("transfer" in c for c in cells):
            cell["transfer"] = statistics.fmean(c["transfer"] for c in cells)
        seeds = [c.get("seeds") for c in cells]
        if all(seeds) and all(s.keys() == seeds[0].keys() for s in seeds):
            cell["seeds"] = {s: statistics.fmean(f[s] for f in seeds) for s in seeds[0]}
            if len(cell["seeds"]) > 1:
                cell["accuracy_sd"] = statistics.stdev(cell["seeds"].values())
    out["unfinished"] = [m for m in METHODS if m not in out["methods"]
                         and any(m in f["methods"] or m in f.get("unfinished", []) for f in folds)]
    out["folds"] = folds
    return out


def stamp(results: dict[str, Any], root: str | Path, *, budget: str, seeds: int | list[int],
          folds: Folds = "quick") -> dict[str, Any]:
    """Each data set's row with its `run` record: budget, seeds, protocol, machine, when its last cell finished,
    and the code its cells recorded (so a later `collect_only` cannot misattribute them)."""
    seeds = as_seeds(seeds)
    for name, row in results.items():
        name = row.get("dataset", name)
        paths = [cell_layout(Path(root), Cell(name, fold, seed, method)).distill_metrics
                 for fold in grid.folds(name, folds) for seed in seeds for method in METHODS]
        metrics = [json.loads(p.read_text()) | {"mtime": p.stat().st_mtime} for p in paths if p.is_file()]
        finished = [m.get("finished") or utc(m["mtime"]) for m in metrics]
        code = _versions({m.get("code") for m in metrics} - {None})
        hosts = sorted({m.get("host") for m in metrics} - {None})
        row["run"] = {"budget": budget, **({"seed": seeds[0]} if len(seeds) == 1 else {"seeds": seeds}),
                      "protocol": protocol(name, [f.get("fold") for f in row.get("folds", [row])]),
                      "machine": "; ".join(hosts) if hosts else
                      f"{platform.machine()}, {torch.get_num_threads()} torch threads",
                      "torch": torch.__version__,
                      "finished": max(finished, default=None),
                      **({"code": code} if code else {})}
    return results


def _versions(codes: set[str]) -> str:
    """The code versions cells recorded (provenance.describe), each framilab version said once with its commits:
    'framilab 0.1.0, commits 0da9a3a, 17d4d46'."""
    commits: dict[str, list[str]] = {}
    for code in sorted(codes):
        version, _, commit = code.partition(", commit ")
        commits.setdefault(version, []).append(commit)
    said = []
    for version, those in commits.items():
        named = [c for c in those if c]
        if len(named) < len(those):
            said.append(version)
        if named:
            said.append(f"{version}, commit{'s' if len(named) > 1 else ''} {', '.join(named)}")
    return "; ".join(said)


def with_kept_rows(results: dict[str, Any], folder: str | Path) -> dict[str, Any]:
    """`results`, plus the rows it lacks from folder/results.json (an earlier run's), in the data sets' order,
    each data set's quick-protocol row before its cross-validation."""
    previous_path = Path(folder) / "results.json"
    previous = json.loads(previous_path.read_text()) if previous_path.is_file() else {}
    rows = {**previous, **results}
    known = list(DATASETS + PAPER_DATASETS)

    def order(name: str) -> tuple[int, bool]:
        dataset = rows[name].get("dataset", name)
        return (known.index(dataset) if dataset in known else len(known), name != dataset)

    return {n: rows[n] for n in sorted(rows, key=order)}
