"""Run the notebook chain through papermill, from Python or the shell.

    python -m framilab.run                                  # the demo: every stage on `synthetic`, full size
    python -m framilab.run --dataset fsdd --data-root ../shared/data/fsdd -p epochs 5
    python -m framilab.run -p w_fic 0 -p inversion.rounds 6 -p distillation.rounds 10
    python -m framilab.run --classroom                      # the notebooks' own (classroom-size) defaults

The notebooks' defaults are classroom size (a minute or two each on a laptop CPU); the CLI runs
them at FULL_SIZE, the budgets behind the committed figures and the benchmark table.

Each stage's executed notebook lands in runs/<name>/; the stage's own outputs (checkpoints,
metrics, figures, the run's spec) in runs/<name>/<stage>/. papermill only warns about parameters a
notebook does not declare; this module refuses them, listing the valid names, and refuses a plain name
that several stages use for different things (rounds, lr, batch_size, ...), naming the qualified choices.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import papermill
import yaml
from nbclient.exceptions import DeadKernelError

from .data.base import resolve_root
from .layout import Layout
from .paths import project_root
from .pipeline import distillation_results, summarize, teacher_results

# Stage name -> notebook, in chain order.
STAGES: dict[str, str] = {"teacher": "01_teacher.ipynb", "inversion": "02_inversion.ipynb",
                          "distillation": "03_distillation.ipynb"}
# Every notebook papermill runs: the chain's stages and the benchmark table that runs the chain per method.
NOTEBOOKS: dict[str, str] = {**STAGES, "benchmark": "04_benchmark.ipynb"}
# Full-size budgets per data set (the demo, the README's numbers, the benchmark's "full" budget), as run
# spec sections (spec.py): one inversion and distillation budget for all, teachers sized per data set;
# ESC-10 synthesises 2-3 s (its clips are 5 s) and its KD-on-real reference trains longer.
_INVERSION = {"rounds": 12, "warmup": 3, "steps_per_round": 10}
_DISTILLATION = {"rounds": 20, "steps_per_round": 30, "synth_steps": 5, "eval_every": 4, "kd_real_epochs": 10}
_PAPER_INVERSION = {"rounds": 40, "warmup": 5, "steps_per_round": 20, "batch_size": 128}
_PAPER_DISTILLATION = {"rounds": 100, "steps_per_round": 50, "synth_steps": 5, "batch_size": 128, "eval_every": 10}
FULL_SIZE: dict[str, dict[str, dict[str, Any]]] = {
    "synthetic": {"teacher": {"epochs": 25, "crop_seconds": 1.6}, "inversion": _INVERSION,
                  "distillation": _DISTILLATION},
    "fsdd": {"teacher": {"epochs": 15, "crop_seconds": 0.8}, "inversion": _INVERSION, "distillation": _DISTILLATION},
    "esc10": {"teacher": {"epochs": 60, "batch_size": 32, "crop_seconds": 3.0, "mixup_alpha": 0.2},
              "inversion": {**_INVERSION, "frames": [100, 150]},
              "distillation": {**_DISTILLATION, "kd_real_epochs": 30}},
    # The FRAMI paper's data sets, sized for a GPU (python -m framilab.benchmarks.estimate: hours per stage):
    # teachers trained to convergence on thousands of clips, a pool of 5,120 samples before distillation
    # (ESC-50: 8,000, 160 a class), 5,000 student steps, KD on real data as long as the teacher's training.
    "urbansound8k": {"teacher": {"epochs": 60, "crop_seconds": 3.0, "mixup_alpha": 0.2},
                     "inversion": {**_PAPER_INVERSION, "frames": [100, 200]},
                     "distillation": {**_PAPER_DISTILLATION, "kd_real_epochs": 60}},
    "esc50": {"teacher": {"epochs": 150, "batch_size": 32, "crop_seconds": 3.0, "mixup_alpha": 0.2},
              "inversion": {**_PAPER_INVERSION, "batch_size": 200, "frames": [100, 150]},
              "distillation": {**_PAPER_DISTILLATION, "kd_real_epochs": 150}},
    "audiomnist": {"teacher": {"epochs": 20, "batch_size": 128, "crop_seconds": 0.8},
                   "inversion": _PAPER_INVERSION, "distillation": {**_PAPER_DISTILLATION, "kd_real_epochs": 20}},
}
# Parameters that mean the same in every stage notebook declaring them; any other name that several of the
# chosen stages declare must be qualified with its stage (`-p inversion.rounds 12`).
SHARED_PARAMETERS = {"seed", "device", "overwrite", "resume", "figures_dir", "run_dir", "teacher_dir"}
# What the demo's notebooks show beyond the spec: the loss-term gallery and the dashboard's redraws.
DEMO_VIEWS = {"inversion": {"gallery_rounds": 4, "live_every": 4}}


def notebook_parameters(sections: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each stage notebook's parameters for run spec `sections` (their names are the notebooks' own; the
    data section's synthetic clip count is notebook 01's `n_per_class`)."""
    out = {stage: dict(sections.get(stage, {})) for stage in STAGES}
    if "n_per_class" in sections.get("data", {}):
        out["teacher"]["n_per_class"] = sections["data"]["n_per_class"]
    return out


def chain_wiring(root: Path) -> dict[str, dict[str, str]]:
    """The parameter that points every stage at the chain's folder `root` (layout.Layout.chain)."""
    return {stage: {"run_dir": str(root)} for stage in STAGES}


def notebook_path(stage: str) -> Path:
    if stage not in NOTEBOOKS:
        raise ValueError(f"unknown stage {stage!r}; stages are {list(NOTEBOOKS)}")
    return project_root(Path(__file__).parent) / "notebooks" / NOTEBOOKS[stage]


def valid_parameters(stage: str) -> dict[str, Any]:
    """The names and defaults of a stage notebook's cell tagged `parameters`."""
    declared = papermill.inspect_notebook(str(notebook_path(stage)))
    return {name: spec["default"] for name, spec in declared.items()}


def _declared_default(source: str) -> Any:
    """A parameter's default from its source text in the notebook; `...` when it is not a literal."""
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return ...


# The kinds of value a parameter takes: its default's, or those its notebook names in an annotation where it
# takes several (`folds: "Union[str, dict]" = "quick"`; quoted, so the notebook does not evaluate it).
KINDS = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str, os.PathLike), "list": (list,),
         "dict": (dict,)}
KIND_LABELS = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a text", "list": "a list",
               "dict": "a mapping"}


def check_value(stage: str, name: str, value: Any, default: Any, annotation: str | None = None) -> None:
    """A value of a kind its notebook declares (int, number, bool, text, list, mapping: the default's, or the
    annotation's), and not negative where the default is a count or weight (>= 0): refused before any stage
    runs, not after the data has loaded."""
    if default is ... or default is None or value is None:
        return
    kinds = [kind for kind in re.findall(r"\w+", annotation or "") if kind in KINDS] or [type(default).__name__]
    if any(kind not in KINDS for kind in kinds):
        return
    accepted = tuple(python_type for kind in kinds for python_type in KINDS[kind])
    if not isinstance(value, accepted) or (isinstance(value, bool) and "bool" not in kinds):
        label = " or ".join(KIND_LABELS[kind] for kind in kinds)
        raise ValueError(f"stage {stage!r} parameter {name}: expected {label} like its default {default!r}, "
                         f"got {value!r} ({type(value).__name__})")
    if type(default) in (int, float) and default >= 0 and value < 0:
        raise ValueError(f"stage {stage!r} parameter {name}: {value} is negative; it counts or weighs something "
                         f"(default {default!r}) and must be 0 or more")


def check_parameters(stage: str, parameters: dict[str, Any]) -> None:
    """Refuse names the stage's notebook does not declare (listing the valid ones) and values of the wrong kind."""
    declared = papermill.inspect_notebook(str(notebook_path(stage)))
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"stage {stage!r} ({NOTEBOOKS[stage]}) has no parameter(s) {unknown}; "
                         f"valid names: {sorted(declared)}")
    for name, value in parameters.items():
        check_value(stage, name, value, _declared_default(declared[name]["default"]),
                    declared[name]["inferred_type_name"])


class StageError(RuntimeError):
    """A stage notebook raised: the message names the stage, the error and the executed notebook to read."""


class KernelDiedError(RuntimeError):
    """A stage notebook's kernel died (a native crash, or killed from outside); the message says where."""


@contextmanager
def _faulthandler_in_kernels() -> Iterator[None]:
    """Kernels started inside the block print the Python stack of a native crash on stderr."""
    before = os.environ.get("PYTHONFAULTHANDLER")
    os.environ["PYTHONFAULTHANDLER"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONFAULTHANDLER"]
        else:
            os.environ["PYTHONFAULTHANDLER"] = before


def _last_started_cell(notebook: Path) -> str:
    """'cell N (first line)' of the last cell papermill started in an executed notebook."""
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return "an unknown cell"
    started = [i for i, cell in enumerate(cells) if cell.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return "the first cell"
    source = "".join(cells[started[-1]]["source"]).strip().splitlines() or [""]
    return f"cell {started[-1]} ({source[0][:60]!r})"


def run_stage(stage: str, parameters: dict[str, Any], output: Path, progress: bool = True) -> Path:
    """Execute one stage notebook with `parameters` into `output` (an .ipynb path)."""
    check_parameters(stage, parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _faulthandler_in_kernels():
            papermill.execute_notebook(str(notebook_path(stage)), str(output), parameters=parameters,
                                       cwd=str(project_root(Path(__file__).parent)), progress_bar=progress,
                                       kernel_name="python3")
    except DeadKernelError:
        raise KernelDiedError(
            f"stage {stage!r}: the notebook's kernel died while running {_last_started_cell(output)} of {output}. "
            "A native crash printed its Python stack above ('Fatal Python error'); `python -m framilab.cpucheck` "
            "tells whether this CPU runs every model. The stage resumes from its last checkpoint with "
            "-p resume true") from None
    return output


def run_chain(name: str = "demo", stages: list[str] | None = None, common: dict[str, Any] | None = None,
              per_stage: dict[str, dict[str, Any]] | None = None, progress: bool = True,
              root: Path | None = None) -> dict[str, Any]:
    """Run `stages` in order into runs/<name>/ (or `root`), passing each stage's outputs to the next.

    `common` parameters go to every stage that declares them (the data set to notebook 01, whose spec the
    later stages continue); `per_stage[stage]` to that stage only. Returns a summary with accuracies and
    minutes per stage.
    """
    stages = stages or list(STAGES)
    root = root or project_root(Path(__file__).parent) / "runs" / name
    summary: dict[str, Any] = {"run": str(root), "minutes": {}}
    parameters = {}
    for stage in stages:
        declared = valid_parameters(stage)
        params = {**chain_wiring(root)[stage], **{k: v for k, v in (common or {}).items() if k in declared}}
        params.update((per_stage or {}).get(stage, {}))
        check_parameters(stage, params)
        parameters[stage] = params
    for stage, params in parameters.items():
        t0 = time.perf_counter()
        try:
            run_stage(stage, params, root / STAGES[stage], progress=progress)
        except papermill.PapermillExecutionError as err:
            raise StageError(f"stage {stage!r} failed with {err.ename}: {err.evalue} (the executed notebook, with "
                             f"the traceback in cell {err.cell_index}: {root / STAGES[stage]})") from err
        summary["minutes"][stage] = (time.perf_counter() - t0) / 60
    return {**summary, **chain_summary(Layout.chain(root))}


def chain_summary(layout: Layout) -> dict[str, Any]:
    """pipeline.summarize over the stages that finished in `layout`."""
    taught = teacher_results(layout) if layout.teacher_metrics.is_file() else {}
    inverted = json.loads(layout.inversion_metrics.read_text()) if layout.inversion_metrics.is_file() else {}
    distilled = distillation_results(layout) if layout.distill_metrics.is_file() else {}
    return summarize(taught, inverted, distilled)


def split_parameters(pairs: list[tuple[str, Any]], stages: list[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """`-p` pairs as (parameters for every stage declaring them, parameters per stage): "stage.name" goes to that
    stage; a flat name goes to every stage declaring it, and is refused, with the qualified choices, where
    several chosen stages declare it for different things (`rounds`, `lr`, `steps_per_round`, ...)."""
    common: dict[str, Any] = {}
    per_stage: dict[str, dict[str, Any]] = {stage: {} for stage in stages}
    for name, value in pairs:
        stage, _, key = name.rpartition(".")
        if stage:
            if stage not in stages:
                raise ValueError(f"parameter {name!r}: {stage!r} is not a stage of this run; stages: {stages}")
            if key not in valid_parameters(stage):
                raise ValueError(f"stage {stage!r} has no parameter {key!r}; valid names: "
                                 f"{sorted(valid_parameters(stage))}")
            per_stage[stage][key] = value
            continue
        declaring = [s for s in stages if name in valid_parameters(s)]
        if not declaring and name not in ("dataset", "data_root"):
            every = set().union(*(valid_parameters(s) for s in stages))
            raise ValueError(f"unknown parameter(s) {[name]}; valid names for stages {stages}: {sorted(every)}")
        if len(declaring) > 1 and name not in SHARED_PARAMETERS:
            raise ValueError(f"parameter {name!r} means something different in stages {declaring}: give "
                             + " or ".join(f"{s}.{name}" for s in declaring) + " (or several of them)")
        common[name] = value
    return common, per_stage


def parse_value(text: str) -> Any:
    """`-p` values: YAML scalars and lists (5, 0.003, null, true, [1, 2]); anything else is a string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m framilab.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="demo", help="run folder under runs/ (default: demo)")
    parser.add_argument("--dataset", help="data set for every stage (default: the notebooks' own, synthetic)")
    parser.add_argument("--data-root", help="its folder (default: $FRAMILAB_DATA/<dataset>)")
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), help="stages to run, in order (default: all)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a notebook parameter (repeatable): stage.name for one stage (inversion.rounds 12), "
                             "a plain name for the one stage that declares it, or seed, device, overwrite, "
                             "resume for every stage")
    parser.add_argument("--classroom", action="store_true",
                        help="the notebooks' own defaults instead of FULL_SIZE for the data set")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    stages = args.stages or list(STAGES)
    try:
        common, asked = split_parameters([(name, parse_value(value)) for name, value in args.parameter], stages)
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    if args.dataset:
        common["dataset"] = args.dataset
    if args.data_root:
        common["data_root"] = args.data_root
    dataset = args.dataset or "synthetic"
    if dataset != "synthetic":
        try:
            resolve_root(args.data_root, dataset, dataset, "Give its folder with --data-root.")
        except FileNotFoundError as err:
            parser.exit(2, f"{parser.prog}: error: {err}\n")
    sizes = {} if args.classroom else notebook_parameters(FULL_SIZE.get(dataset, {}))
    if not args.classroom:
        for stage, views in DEMO_VIEWS.items():
            sizes[stage] = {**sizes.get(stage, {}), **views}
    per_stage = {stage: {**{k: v for k, v in sizes.get(stage, {}).items() if k not in common}, **asked[stage]}
                 for stage in stages}
    try:
        summary = run_chain(args.name, stages, common, per_stage=per_stage, progress=not args.quiet)
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except (StageError, KernelDiedError) as err:
        parser.exit(1, f"{parser.prog}: error: {err}\n")
    print(f"\nrun: {summary['run']}")
    for key, value in summary.items():
        if isinstance(value, float):
            print(f"{key:>24}: {value:.4f}")
    for stage, minutes in summary["minutes"].items():
        print(f"{stage:>24}: {minutes:.1f} min")
    return summary


if __name__ == "__main__":
    main()
