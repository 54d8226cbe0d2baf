"""The benchmark table: every data-free method against the real-data references, on each data set.

Each cell runs the notebook chain through papermill (`framilab.run`): notebook 01 once per data set
(teacher and student from real data), then 02 (inversion) and 03 (distillation) per method, all at
the same budget and seed. FRAMI without hidden-state reuse distils from a copy of FRAMI's own
inversion run with reuse_pre = reuse_post = 0, so the two differ in that alone. Finished cells are
kept: an interrupted benchmark picks up where it stopped.

Several seeds repeat synthesis and distillation (generator, noise, student, batch order, the KD-on-real
student) on one teacher per data set, trained with the first seed: the methods are compared on the same
teacher, seed by seed, and each cell reports the mean over its seeds, their spread and each seed's number.
Seed 0's cells sit directly in the data set's folder (where single-seed runs have always put them), other
seeds' in seed<k>/ beside them.

A data set's row is one run (one teacher, its seeds, one machine) and says which (its `run` record). The
whole table takes hours on 2 cores, so a run of some data sets replaces their rows in results.json
and keeps the others' rows as they were, each with its own record.

Rerun: make benchmark   (notebook 04 through papermill at FULL_RUN, every data set and method;
`--classroom` keeps the notebook's own defaults; `-p` overrides either, as in framilab.run, e.g.
make benchmark BENCHMARK_ARGS='-p datasets ["esc10"]' to rerun one data set's row)
Writes figures/results.md, figures/results.json, figures/accuracy_vs_time.png, figures/per_class_accuracy.png,
figures/samples_<dataset>.png.
"""
from __future__ import annotations

import argparse
import ast
import json
import platform
import shutil
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ..checkpoint import load_teacher
from ..live import variant_gallery
from ..paths import resolve
from ..plots import save_figure
from ..run import FULL_SIZE, parse_value, run_chain, run_stage, valid_parameters

DATASETS = ("synthetic", "fsdd", "esc10")
METHODS = ("deepinversion", "dafl", "cmi", "frami_no_fic", "frami_no_reuse", "frami")
# Benchmark method -> (synthesis method, distillation parameters).
SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    **{m: (m, {}) for m in METHODS if m != "frami_no_reuse"},
    "frami_no_reuse": ("frami", {"reuse_pre": 0.0, "reuse_post": 0.0}),
}
# Data sets whose quick protocol holds out one predefined fold (the five-fold option rotates it).
FOLDED = {"esc10", "esc50", "urbansound8k", "audiomnist"}
# FSDD's five-fold option: leave one speaker out, for each speaker of ../shared/data/fsdd (a full FSDD
# release has a sixth, who then stays in every training split).
FSDD_SPEAKERS = ("george", "jackson", "nicolas", "theo", "yweweler")
QUIET = {"figures_dir": None}

# Notebook parameters per budget, data set and stage. "full" is the committed table (framilab.run's
# FULL_SIZE without the loss-term gallery); "classroom" is notebook 04 as committed: a teacher at notebook
# 01's defaults (04 reuses 01's own), a short inversion and distillation; "tiny" tests the plumbing.
BUDGETS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "full": FULL_SIZE,
    "classroom": {name: {"teacher": {}, "inversion": {"rounds": 2, "warmup": 1},
                         "distillation": {"rounds": 2, "eval_every": 1, "kd_real_epochs": 1}} for name in DATASETS},
    "tiny": {name: {"teacher": {"epochs": 1, "student_epochs": 1, **({"n_per_class": 6} if name == "synthetic" else {})},
                    "inversion": {"rounds": 2, "warmup": 1, "steps_per_round": 1, "batch_size": 8,
                                  "student_steps": 1, "frames": [44, 52]},
                    "distillation": {"rounds": 2, "steps_per_round": 2, "synth_steps": 1, "batch_size": 8,
                                     "eval_every": 1, "kd_real_epochs": 1}}
             for name in DATASETS},
}
# What `python -m framilab.benchmarks.table` (make benchmark) passes to notebook 04: the committed table.
FULL_RUN: dict[str, Any] = {"datasets": list(DATASETS), "methods": list(METHODS), "budget": "full",
                            "teachers": None, "root": "runs/benchmark", "figures_dir": "figures"}
STAGE_EXTRAS = {"teacher": QUIET, "inversion": {**QUIET, "live_every": 4}, "distillation": {**QUIET, "eval_every": 4}}


def cell_parameters(budget: str, dataset: str, seed: int) -> dict[str, dict[str, Any]]:
    """Each stage's notebook parameters for one data set at `budget`."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; choose one of {sorted(BUDGETS)}")
    if dataset not in BUDGETS[budget]:
        raise ValueError(f"budget {budget!r} has no settings for {dataset!r}; it covers {sorted(BUDGETS[budget])}")
    params = {stage: {**STAGE_EXTRAS[stage], **values, "seed": seed}
              for stage, values in BUDGETS[budget][dataset].items()}
    params["inversion"]["gallery_rounds"] = 0  # the loss-term gallery teaches; the table does not need it
    return params


def as_seeds(seeds: int | list[int] | tuple[int, ...]) -> list[int]:
    """`seeds` as a list of distinct ints (one int is one seed); anything else is refused."""
    values = [seeds] if isinstance(seeds, int) else list(seeds)
    if not values or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in values) \
            or len(set(values)) != len(values):
        raise ValueError(f"seeds must be one non-negative int or a list of distinct ones, e.g. [0, 1, 2]; got {seeds!r}")
    return values


def run_benchmark(root: str | Path, datasets: list[str] | tuple[str, ...] = DATASETS,
                  methods: list[str] | tuple[str, ...] = METHODS, *, budget: str = "full",
                  seeds: int | list[int] = 0, data_roots: dict[str, str | None] | None = None,
                  five_fold: bool = False, teachers: dict[str, str | Path] | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """Run every (data set, seed, method) cell under `root` (skipping finished ones) and return the results.

    `teachers` maps a data set to a finished teacher run (notebook 01's `run_dir`) that its
    quick-protocol cell copies instead of training a teacher of its own; a folder without a finished
    run is passed over and a teacher is trained. Five-fold cells always train one per fold.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    seeds = as_seeds(seeds)
    root = Path(root)
    # FRAMI's inversion is shared with FRAMI-without-reuse, so it runs first.
    order = sorted(methods, key=lambda m: (m != "frami", METHODS.index(m)))
    jobs = [(name, fold, seed, method) for name in datasets for fold in _folds(name, five_fold) for seed in seeds
            for method in order]
    bar = tqdm(jobs, desc="benchmark", disable=not progress)
    for name, fold, seed, method in bar:
        bar.set_postfix_str(" ".join([name] + ([f"fold {fold}"] if fold else []) + [f"seed {seed}", method]))
        reuse = (teachers or {}).get(name) if fold is None else None
        _run_cell(root / _cell_name(name, fold), name, method, budget, seed, (data_roots or {}).get(name), fold,
                  reuse, progress)
    return collect(root, datasets, methods, five_fold, seeds)


def _folds(dataset: str, five_fold: bool) -> list[int | str | None]:
    """The held-out folds of a data set's cells: the quick protocol's one (None), or all five; FSDD's five
    are its speakers, each left out in turn (a new voice, which the official split never tests)."""
    if not five_fold:
        return [None]
    if dataset == "fsdd":
        return list(FSDD_SPEAKERS)
    return [1, 2, 3, 4, 5] if dataset in FOLDED else [None]


def _cell_name(dataset: str, fold: int | str | None) -> str:
    return dataset if fold is None else f"{dataset}_fold{fold}"


def _seed_dir(folder: Path, seed: int) -> Path:
    """Where one seed's method cells sit in a data set's (or fold's) folder."""
    return folder if seed == 0 else folder / f"seed{seed}"


def _run_cell(folder: Path, dataset: str, method: str, budget: str, seed: int, data_root: str | None,
              fold: int | str | None, teacher_run: str | Path | None, progress: bool) -> None:
    params = cell_parameters(budget, dataset, seed)
    common: dict[str, Any] = {"dataset": dataset, "data_root": data_root}
    if fold is not None:
        common["test_fold"] = fold
    if not (folder / "teacher" / "teacher_metrics.json").is_file() and not (
            teacher_run is not None and _reuse_teacher(resolve(teacher_run), folder / "teacher", dataset)):
        run_chain(stages=["teacher"], common=common, per_stage={"teacher": {**params["teacher"], "resume": True}},
                  progress=progress, root=folder)
    cell = _seed_dir(folder, seed) / method
    if (cell / "inversion" / "distill_metrics.json").is_file():
        return
    synthesis, distill_overrides = SETTINGS[method]
    teacher = str(folder / "teacher" / "teacher.pt")
    finished_inversion = (cell / "inversion" / "inversion_metrics.json").is_file()
    if synthesis != method and not finished_inversion:
        _copy_inversion(_seed_dir(folder, seed) / synthesis / "inversion", cell / "inversion")
    # An interrupted cell resumes: a finished inversion is not run again (that would truncate the pool
    # back to its own batches), an unfinished stage continues from its checkpoint.
    stages = ["distillation"] if synthesis != method or finished_inversion else ["inversion", "distillation"]
    distill = {**params["distillation"], **distill_overrides, "teacher": teacher, "method": synthesis,
               "resume": True}
    if method != "frami":
        distill["kd_real_epochs"] = 0
    run_chain(stages=stages, common=common, progress=progress, root=cell,
              per_stage={"inversion": {**params["inversion"], "teacher": teacher, "method": synthesis,
                                       "resume": True},
                         "distillation": distill})


def _reuse_teacher(source: Path, target: Path, dataset: str) -> bool:
    """Copy the finished teacher run in `source` (teacher, student from real data, metrics) to `target`;
    False, with a note, where `source` holds no finished run."""
    metrics = source / "teacher_metrics.json"
    if not metrics.is_file():
        print(f"no finished teacher run in {source}: training a teacher for {dataset}")
        return False
    trained_on = json.loads(metrics.read_text()).get("dataset")
    if trained_on != dataset:
        raise ValueError(f"{source} holds a teacher trained on {trained_on!r}, not {dataset!r}: give that data "
                         f"set's own teacher run in `teachers`, or leave {dataset!r} out of it to train one")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    print(f"{dataset}: reusing the teacher run in {source}")
    return True


def _copy_inversion(source: Path, target: Path) -> None:
    """The inversion run's pool, checkpoint and metrics (not its distillation), for a second distillation."""
    if not (source / "inversion_metrics.json").is_file():
        raise FileNotFoundError(f"{source} holds no finished inversion run; run its method first")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source / "pool", target / "pool")
    for name in ("inversion_checkpoint.pt", "inversion_metrics.json"):
        shutil.copy2(source / name, target / name)


def _cell_result(folder: Path, method: str) -> dict[str, Any]:
    """Accuracy, minutes and the accuracy-over-time curve of one finished (data set, seed, method) cell."""
    synthesis, _ = SETTINGS[method]
    inversion = json.loads((folder / method / "inversion" / "inversion_metrics.json").read_text())
    distill = json.loads((folder / method / "inversion" / "distill_metrics.json").read_text())
    inversion_minutes = (inversion["seconds"] + inversion["student_seconds"]) / 60
    curve = [[inversion_minutes + (r["synthesis_seconds"] + r["distill_seconds"]) / 60, r["student_accuracy"]]
             for r in distill["history"] if "student_accuracy" in r]
    synthesis_minutes = (inversion["seconds"] + distill["synthesis_seconds"]) / 60
    distill_minutes = (inversion["student_seconds"] + distill["distill_seconds"]) / 60
    return {"accuracy": distill["student_accuracy"], "cpu_minutes": synthesis_minutes + distill_minutes,
            "synthesis_minutes": synthesis_minutes, "distill_minutes": distill_minutes,
            "synthesis_method": synthesis, "curve": curve, "kd_real": distill.get("kd_real_accuracy"),
            **({"transfer": inversion["transfer_accuracy"]} if "transfer_accuracy" in inversion else {}),
            "per_class": distill.get("per_class_accuracy"), "kd_real_per_class": distill.get("kd_real_per_class_accuracy")}


def collect(root: str | Path, datasets: list[str] | tuple[str, ...] = DATASETS,
            methods: list[str] | tuple[str, ...] = METHODS, five_fold: bool = False,
            seeds: int | list[int] = 0) -> dict[str, Any]:
    """results.json's content from the finished cells under `root` (unfinished ones are left out, and
    results_markdown names them): each cell the mean over the seeds that finished it, with each seed's
    accuracy; five-fold cells are then averaged per data set."""
    root, seeds = Path(root), as_seeds(seeds)
    results: dict[str, Any] = {}
    for name in datasets:
        per_fold = []
        for fold in _folds(name, five_fold):
            folder = root / _cell_name(name, fold)
            if not (folder / "teacher" / "teacher_metrics.json").is_file():
                continue
            teacher = json.loads((folder / "teacher" / "teacher_metrics.json").read_text())
            per_seed = {seed: {m: _cell_result(_seed_dir(folder, seed), m) for m in methods
                               if (_seed_dir(folder, seed) / m / "inversion" / "distill_metrics.json").is_file()}
                        for seed in seeds}
            kd_cells = {seed: next((c for c in cells.values() if c["kd_real"] is not None), None)
                        for seed, cells in per_seed.items()}
            kd_cells = {seed: c for seed, c in kd_cells.items() if c is not None}
            kd_real = {seed: c["kd_real"] for seed, c in kd_cells.items()}
            kd_real_per_class = [c["kd_real_per_class"] for c in kd_cells.values() if c["kd_real_per_class"] is not None]
            per_fold.append({"teacher": teacher["test_accuracy"], "student_real": teacher.get("student_real_accuracy"),
                             "kd_real": statistics.fmean(kd_real.values()) if kd_real else None,
                             **({"kd_real_seeds": _by_seed(kd_real)} if len(seeds) > 1 else {}),
                             "per_class": {"teacher": teacher.get("per_class_accuracy"),
                                           "student_real": _per_class_in(folder / "teacher" / "student_real_metrics.json"),
                                           "kd_real": _mean_per_class(kd_real_per_class)},
                             "methods": {m: _over_seeds({s: cells[m] for s, cells in per_seed.items() if m in cells},
                                                        several=len(seeds) > 1)
                                         for m in methods if any(m in cells for cells in per_seed.values())}})
        if per_fold:
            results[name] = per_fold[0] if len(per_fold) == 1 else _average(per_fold)
    return results


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
    length = min(len(c["curve"]) for c in runs)
    out["curve"] = [[statistics.fmean(c["curve"][i][j] for c in runs) for j in (0, 1)] for i in range(length)]
    return out


def _per_class_in(metrics_file: Path) -> dict[str, float] | None:
    return json.loads(metrics_file.read_text()).get("per_class_accuracy") if metrics_file.is_file() else None


def _mean_per_class(runs: list[dict[str, float]]) -> dict[str, float] | None:
    """Each class's accuracy averaged over `runs` (None for none)."""
    return {name: statistics.fmean(r[name] for r in runs) for name in runs[0]} if runs else None


def paired_differences(row: dict[str, Any], against: str = "frami") -> dict[str, list[float]]:
    """`against`'s accuracy minus each other method's, seed by seed, over the seeds both finished."""
    mine = row["methods"].get(against, {}).get("seeds", {})
    return {method: [mine[s] - m["seeds"][s] for s in mine if s in m.get("seeds", {})]
            for method, m in row["methods"].items() if method != against and set(mine) & set(m.get("seeds", {}))}


def _average(folds: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else sum(values) / len(values)  # type: ignore[arg-type]

    out = {key: mean([f[key] for f in folds]) for key in ("teacher", "student_real", "kd_real")}
    out["methods"] = {m: {k: mean([f["methods"][m][k] for f in folds])
                          for k in ("accuracy", "cpu_minutes", "synthesis_minutes", "distill_minutes")}
                      for m in folds[0]["methods"] if all(m in f["methods"] for f in folds)}
    out["folds"] = folds
    return out


def stamp(results: dict[str, Any], root: str | Path, *, budget: str, seeds: int | list[int],
          five_fold: bool = False) -> dict[str, Any]:
    """Each data set's row with its `run` record: budget, seeds, protocol, machine, when its last cell finished,
    and the code its cells recorded (so a later `collect_only` cannot misattribute them)."""
    seeds = as_seeds(seeds)
    for name, row in results.items():
        metrics = [p for fold in _folds(name, five_fold) for seed in seeds
                   for p in _seed_dir(Path(root) / _cell_name(name, fold), seed).glob("*/inversion/distill_metrics.json")]
        finished = max((p.stat().st_mtime for p in metrics), default=None)
        code = sorted({json.loads(p.read_text()).get("code") for p in metrics} - {None})
        row["run"] = {"budget": budget, **({"seed": seeds[0]} if len(seeds) == 1 else {"seeds": seeds}),
                      "protocol": "five-fold" if five_fold else "quick",
                      "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
                      "torch": torch.__version__,
                      "finished": None if finished is None else
                      datetime.fromtimestamp(finished, timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                      **({"code": "; ".join(code)} if code else {})}
    return results


def with_kept_rows(results: dict[str, Any], folder: str | Path) -> dict[str, Any]:
    """`results`, plus the rows of the data sets it lacks from folder/results.json (an earlier run's)."""
    previous_path = Path(folder) / "results.json"
    previous = json.loads(previous_path.read_text()) if previous_path.is_file() else {}
    names = [n for n in DATASETS if n in results or n in previous]
    names += [n for n in {**previous, **results} if n not in names]
    return {n: results[n] if n in results else previous[n] for n in names}


def publish(results: dict[str, Any], folder: str | Path, header: str = "") -> dict[str, Any]:
    """Write results.json, results.md and accuracy_vs_time.png to `folder` (created), keeping the rows of
    data sets this run left out; returns the table as written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = with_kept_rows(results, folder)
    (folder / "results.json").write_text(json.dumps(table, indent=2))
    (folder / "results.md").write_text(results_markdown(table, header))
    fig = accuracy_vs_time(table)
    save_figure(fig, folder / "accuracy_vs_time.png")
    plt.close(fig)
    if any(_per_class_rows(row) for row in table.values()):
        fig = per_class_accuracy(table)
        save_figure(fig, folder / "per_class_accuracy.png")
        plt.close(fig)
    return table


def results_markdown(results: dict[str, Any], header: str = "") -> str:
    """The table: references, then each method's student accuracy, minutes and ratio to KD on real data."""
    lines = [header] if header else []
    for name, row in results.items():
        kd = row["kd_real"]
        judged = any("transfer" in m for m in row["methods"].values())
        lines += [f"\n## {name}\n", _run_line(row.get("run")) + "\n",
                  "| student trained on | accuracy | CPU-min (synthesis + distillation) | x KD on real data |"
                  + (" pool's transfer accuracy |" if judged else ""), "|---|---|---|---|" + ("---|" if judged else "")]
        for label, key in (("teacher (real data)", "teacher"), ("student, real data (no teacher)", "student_real"),
                           ("KD on real data", "kd_real")):
            if row[key] is not None:
                spread = _spread(row.get(f"{key}_seeds", {}))
                lines.append(f"| {label} | {row[key]:.4f}{spread} | | {_ratio(row[key], kd)} |" + (" |" if judged else ""))
        best = max((m["accuracy"] for m in row["methods"].values()), default=None)
        for method, m in row["methods"].items():
            acc = f"**{m['accuracy']:.4f}**" if m["accuracy"] == best else f"{m['accuracy']:.4f}"
            transfer = (f" {m['transfer']:.3f} |" if "transfer" in m else " |") if judged else ""
            lines.append(f"| data-free: {method} | {acc}{_spread(m.get('seeds', {}))} | {m['cpu_minutes']:.2f} "
                         f"({m['synthesis_minutes']:.2f} + {m['distill_minutes']:.2f}) | {_ratio(m['accuracy'], kd)} |"
                         + transfer)
        if judged:
            lines.append("\nTransfer accuracy: the share of the inversion pool that the judges (a TDNN and the "
                         "teacher's architecture from another seed, trained on the real training split apart from "
                         "the teacher) assign to the target class; mean over judges and seeds.")
        missing = [m for m in METHODS if m not in row["methods"]]
        if missing:
            lines.append(f"\nNot finished (run `make benchmark` again to continue them): {', '.join(missing)}.")
        rows = _per_class_rows(row)
        if rows:
            classes = list(next(iter(rows.values())))
            lines += ["\nPer-class accuracy on the real test split (mean over the seeds):\n",
                      "| student trained on | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
            lines += [f"| {label} | " + " | ".join(f"{values[c]:.2f}" for c in classes) + " |"
                      for label, values in rows.items()]
        differences = paired_differences(row)
        if any(len(d) > 1 for d in differences.values()):
            lines += ["\nFRAMI minus each method, seed by seed (mean ± standard deviation over the seeds both "
                      "finished; each seed's difference in brackets):\n"]
            lines += [f"- {method}: {_signed(statistics.fmean(d))} ± {statistics.stdev(d):.4f} over {len(d)} seeds "
                      f"({', '.join(_signed(x) for x in d)})" for method, d in differences.items() if len(d) > 1]
    return "\n".join(lines) + "\n"


def _spread(seeds: dict[str, float]) -> str:
    """' ± sd (each seed)' for several seeds, nothing for one."""
    if len(seeds) < 2:
        return ""
    values = list(seeds.values())
    return f" ± {statistics.stdev(values):.4f} ({', '.join(f'{v:.3f}' for v in values)})"


def _signed(value: float) -> str:
    return f"{value:+.4f}"


def _run_line(run: dict[str, Any] | None) -> str:
    if run is None:
        return "One run of an earlier version that kept no record of it (budget and machine: see the README)."
    code = f"; {run['code']}" if "code" in run else ""
    seeds = (f"seeds {', '.join(map(str, run['seeds']))} on one teacher (mean ± standard deviation over the seeds, "
             f"then each seed)" if "seeds" in run else f"seed {run['seed']}")
    return (f"One run: budget `{run['budget']}`, {seeds}, {run['protocol']} protocol; last cell finished "
            f"{run['finished']}; {run['machine']}, torch {run['torch']}{code}.")


def _ratio(accuracy: float, reference: float | None) -> str:
    return "" if not reference else f"{accuracy / reference:.3f}"


def accuracy_vs_time(results: dict[str, Any]) -> Figure:
    """Student accuracy on the real test split against CPU minutes, a line per method, a panel per data set."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.6 * len(results), 3.6), squeeze=False, layout="constrained")
    for ax, (name, row) in zip(axes[0], results.items()):
        for method, m in row["methods"].items():
            if m.get("curve"):
                minutes, acc = zip(*m["curve"])
                ax.plot(minutes, acc, marker="o", ms=3, lw=2.2 if method == "frami" else 1.2, label=method,
                        color=plt.get_cmap("tab10")(METHODS.index(method)))
        for key, style in (("kd_real", ":"), ("teacher", "--")):
            if row[key] is not None:
                ax.axhline(row[key], color="gray", ls=style, lw=1, label=key.replace("_", " "))
        seeds = (row.get("run") or {}).get("seeds", [])
        ax.set(title=f"{name} (mean of {len(seeds)} seeds)" if seeds else name,
               xlabel="CPU minutes (synthesis + distillation)", ylabel="student test accuracy", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    legend: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="outside right center", fontsize=8)
    return fig


def _per_class_rows(row: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Label -> {class: accuracy} for the references and methods of one data set's row that recorded them."""
    references = row.get("per_class") or {}
    rows = {label: references.get(key) for label, key in
            (("teacher", "teacher"), ("student, real data", "student_real"), ("KD on real data", "kd_real"))}
    rows.update({method: m.get("per_class") for method, m in row["methods"].items()})
    return {label: values for label, values in rows.items() if values}


def per_class_accuracy(results: dict[str, Any]) -> Figure:
    """A heatmap per data set: which classes each student gets right, beside the teacher and the real-data
    references (data sets whose row recorded no per-class accuracy are left out)."""
    panels = {name: rows for name, row in results.items() if (rows := _per_class_rows(row))}
    widest = max(len(next(iter(rows.values()))) for rows in panels.values())
    heights = [len(rows) + 2.5 for rows in panels.values()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(2.2 + 0.8 * widest, 0.32 * sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights}, layout="constrained")
    for ax, (name, rows) in zip(axes[:, 0], panels.items()):
        classes = list(next(iter(rows.values())))
        grid = [[values[c] for c in classes] for values in rows.values()]
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i, line in enumerate(grid):
            for j, value in enumerate(line):
                ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=7,
                        color="black" if value > 0.6 else "white")
        ax.set_xticks(range(len(classes)), classes, rotation=35, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
        seeds = (results[name].get("run") or {}).get("seeds", [])
        ax.set_title(f"{name}: per-class test accuracy (%)" + (f", mean of {len(seeds)} seeds" if seeds else ""),
                     fontsize=9)
    fig.colorbar(image, ax=axes[:, 0].tolist(), shrink=0.6, label="accuracy")
    return fig


def sample_grid(root: str | Path, dataset: str, methods: list[str] | tuple[str, ...] = METHODS,
                five_fold: bool = False, seed: int = 0) -> Figure:
    """One column per synthesis method (its latest sample of each class, from `seed`'s cells), one row per
    class; the five-fold protocol shows the last fold's."""
    folder = Path(root) / _cell_name(dataset, _folds(dataset, five_fold)[-1])
    teacher = load_teacher(folder / "teacher" / "teacher.pt")
    pools: dict[str, dict[str, Path]] = {}
    # A synthesis method's own cell first: frami_no_reuse's copy of FRAMI's pool grew during its distillation.
    for method in sorted(methods, key=lambda m: SETTINGS[m][0] != m):
        synthesis, pool_dir = SETTINGS[method][0], _seed_dir(folder, seed) / method / "inversion" / "pool"
        if synthesis not in pools and (pool_dir / "meta.json").is_file():
            pools[synthesis] = {"pool_dir": pool_dir}
    if not pools:
        raise ValueError(f"no finished pool under {folder} for {list(methods)}: run those cells first")
    fig = variant_gallery(pools, teacher)
    fig.suptitle(f"{dataset}: synthesised log-Mel spectrograms per method", fontsize=10)
    return fig


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
