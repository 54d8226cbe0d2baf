"""The benchmark's markdown table and figures, from collected results (results.py)."""
from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..checkpoint import load_teacher
from ..data import load_dataset
from ..pipeline import spec_in
from ..plots import real_vs_synthetic, save_figure
from . import archive, grid
from .grid import METHODS, SETTINGS, Cell, Folds, cell_layout
from .results import paired_differences, speed_race, with_kept_rows


# results.md: the tables above this line are written by `publish`; the studies and run records below it are
# written by hand and kept when the tables are regenerated.
NOTES = "<!-- Written by hand below this line: kept when `make benchmark` regenerates the tables above. -->\n"


def publish(results: dict[str, Any], folder: str | Path, header: str = "") -> dict[str, Any]:
    """Write results.json, results.md and accuracy_vs_time.png to `folder` (created), keeping the rows of
    data sets this run left out and the hand-written notes below NOTES; returns the table as written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = with_kept_rows(results, folder)
    (folder / "results.json").write_text(json.dumps(table, indent=2))
    markdown = folder / "results.md"
    notes = markdown.read_text().partition(NOTES)[2] if markdown.is_file() else ""
    markdown.write_text(results_markdown(table, header) + "\n" + NOTES + (notes or "\n"))
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
        lines += [f"\n## {name}\n", *([_run_line(row["run"]) + "\n"] if "run" in row else []),
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
        over = "seeds, then the folds" if "folds" in row else "seeds"  # a cross-validation row averages its folds
        if judged:
            lines.append("\nTransfer accuracy: the share of the inversion pool that the judges (a TDNN and the "
                         "teacher's architecture from another seed, trained on the real training split apart from "
                         f"the teacher) assign to the target class; mean over the judges and the {over}.")
        race = speed_race(row)
        if race is not None:
            lines.append(f"\nSpeed race (synthesis minutes; mean curves over the {over}): `deepinversion_2k`'s student "
                         f"reaches {race['accuracy']:.4f} after {race['slow_minutes']:.1f} min; "
                         + (f"FRAMI's stays below it (best {race['best']:.4f})." if race["times_less"] is None else
                            f"FRAMI's (`{race['by']}`) reaches it after {race['fast_minutes']:.1f} min, "
                            f"{'at least ' if race['lower_bound'] else ''}{race['times_less']:.1f}x less synthesis "
                            "time" + (" (at its first evaluation)." if race["lower_bound"] else ".")))
        missing = row.get("unfinished", [])
        if missing:
            lines.append(f"\nNot finished (run `make benchmark` again to continue them): {', '.join(missing)}.")
        rows = _per_class_rows(row)
        if rows:
            classes = list(next(iter(rows.values())))
            lines += [f"\nPer-class accuracy on the real test split (mean over the {over}):\n",
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


def _run_line(run: dict[str, Any]) -> str:
    """A row's run record (results.stamp) in one sentence."""
    code = f"; {run['code']}" if "code" in run else ""
    seeds = (f"seeds {', '.join(map(str, run['seeds']))} on one teacher (mean ± standard deviation over the seeds, "
             f"then each seed)" if "seeds" in run else f"seed {run['seed']}")
    protocol = "quick protocol" if run["protocol"] == "quick" else f"cross-validation: {run['protocol']}, averaged"
    return (f"Budget `{run['budget']}`, {seeds}, {protocol}; last cell finished {run['finished']}; "
            f"run on {run['machine']}; torch {run['torch']}{code}.")


def _ratio(accuracy: float, reference: float | None) -> str:
    return "" if not reference else f"{accuracy / reference:.3f}"


def accuracy_vs_time(results: dict[str, Any]) -> Figure:
    """Student accuracy on the real test split, a line per method, a column per data set: against CPU minutes
    (synthesis + distillation, top) and against synthesis minutes alone on a log scale (bottom: the speed
    race, where DeepInversion at its own budget spends all of its time before the first evaluation)."""
    fig, axes = plt.subplots(2, len(results), figsize=(4.6 * len(results), 7.0), squeeze=False, layout="constrained")
    for column, (name, row) in enumerate(results.items()):
        for ax, key, xlabel in ((axes[0, column], "curve", "CPU minutes (synthesis + distillation)"),
                                (axes[1, column], "synthesis_curve", "synthesis minutes (log scale)")):
            if not any(m.get(key) for m in row["methods"].values()):
                ax.text(0.5, 0.5, f"{name}: this row's cells did not record\nsynthesis minutes per evaluation\n"
                        "(made before the speed race; rerun it)", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
                continue
            for method, m in row["methods"].items():
                if m.get(key):
                    minutes, acc = zip(*m[key])
                    ax.plot(minutes, acc, marker="o", ms=3, lw=2.2 if method == "frami" else 1.2, label=method,
                            color=plt.get_cmap("tab10")(METHODS.index(method)))
            for reference, style in (("kd_real", ":"), ("teacher", "--")):
                if row[reference] is not None:
                    ax.axhline(row[reference], color="gray", ls=style, lw=1, label=reference.replace("_", " "))
            seeds = (row.get("run") or {}).get("seeds", [])
            ax.set(title=f"{name} (mean of {len(seeds)} seeds)" if seeds else name, xlabel=xlabel,
                   ylabel="student test accuracy", ylim=(0, 1.02))
            if key == "synthesis_curve" and ax.lines:
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.grid(alpha=0.3)
    legend: dict[str, Any] = {}
    for ax in axes.flat:
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
        grid = [[100 * values[c] for c in classes] for values in rows.values()]
        image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for i, line in enumerate(grid):
            for j, value in enumerate(line):
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                        color="black" if value > 60 else "white")
        ax.set_xticks(range(len(classes)), classes, rotation=35, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
        seeds = (results[name].get("run") or {}).get("seeds", [])
        ax.set_title(f"{name}: per-class test accuracy (%)" + (f", mean of {len(seeds)} seeds" if seeds else ""),
                     fontsize=9)
    fig.colorbar(image, ax=axes[:, 0].tolist(), shrink=0.6, label="test accuracy (%)")
    return fig


def samples_figure(row: str) -> str:
    """The file name of a table row's sample figure: samples_fsdd.png, samples_fsdd_cross_validation.png."""
    return "samples_" + re.sub(r"[^a-z0-9]+", "_", row.lower()).strip("_") + ".png"


def sample_grid(root: str | Path, dataset: str, methods: list[str] | tuple[str, ...] = METHODS,
                folds: Folds = "quick", seed: int = 0) -> Figure:
    """Real test clips beside each synthesis method's pool (its latest samples of each class at the end of its
    inversion, from `seed`'s cells), one row per class, one dB scale; a cross-validation shows its last fold's."""
    fold = grid.folds(dataset, folds)[-1]
    first_cell = cell_layout(Path(root), Cell(dataset, fold, seed, METHODS[0]))
    teacher = load_teacher(first_cell.teacher_checkpoint)
    sources = {}
    for method in methods:
        synthesis = SETTINGS[method][0]
        drawn = None if synthesis in sources else \
            archive.samples(cell_layout(Path(root), Cell(dataset, fold, seed, method)).inversion, teacher.normalizer)
        if drawn is not None:
            sources[synthesis] = drawn
    if not sources:
        raise ValueError(f"no finished pool under {root} for {dataset} seed {seed}, {list(methods)}: run those cells first")
    spec = spec_in(first_cell.teacher)
    test = load_dataset(spec.data.name, spec.data.root, split="test", config=teacher.feature_config, progress=False,
                        **spec.data.options())
    return real_vs_synthetic(teacher.feature_config, teacher.classes, test.tensors(), sources,
                             per_class=archive.SAMPLES_PER_CLASS,
                             title=f"{dataset}: real test clips and each method's synthesised log-Mel spectrograms")
