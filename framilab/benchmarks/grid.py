"""The benchmark grid as Ray tasks: per data set (and fold) the teacher, the student from real data and
each judge side by side, an inversion per synthesis method and seed once the teacher and its judges are
done, a distillation per table cell once its inversion is.

`ray.init()` starts a local Ray on this machine (nothing to install or run beforehand); an address
(`address=`, or RAY_ADDRESS) joins a running cluster, whose nodes need framilab installed and `root` on
shared storage. Each task declares its CPUs (torch uses as many threads) and GPUs, so the same grid
fills 2 cores here, a 64-core box or a GPU cluster. Results live in the stage folders (layout.py),
keyed by the run spec saved there: a finished cell is never run again, an interrupted one continues
from its checkpoints, a failing cell is reported with its error while the others go on (a lost worker
is retried; an exception is not, since it would fail again), and Ctrl-C leaves finished cells intact.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from .. import pipeline
from ..data import audiomnist, esc50, urbansound8k
from ..layout import Layout
from ..run import FULL_SIZE
from ..spec import InversionSpec, RunSpec

# The committed table's data sets (2-core CPU budgets) and the FRAMI paper's (GPU-sized budgets).
DATASETS = ("synthetic", "fsdd", "esc10")
PAPER_DATASETS = ("urbansound8k", "esc50", "audiomnist")
METHODS = ("deepinversion", "deepinversion_2k", "dafl", "cmi", "frami_no_fic", "frami_no_reuse", "frami", "frami_short")
# Benchmark method -> (the inversion it distils from: its folder name and, unless the overrides' inversion.method
# says otherwise, its synthesis method; spec overrides by section). `deepinversion` runs the table's budget (10 steps a batch, new batches while
# the student learns); `deepinversion_2k` is DeepInversion at its own budget for the speed race: LONG_STEPS
# times the steps a batch (2,000 at the full budget) on LONG_BATCHES of the batches (2 instead of 12), no
# warm-up, and a student distilled from that pool alone. `frami_short` is FRAMI with its inversion stage cut to
# SHORT_ROUNDS rounds (one of them warm-up) and its student evaluated every other round, so the speed race sees
# how soon FRAMI's student gets somewhere (`frami` is first evaluated after its whole inversion stage).
SHORT_ROUNDS = 2
SETTINGS: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    **{m: (m, {}) for m in METHODS if m not in ("frami_no_reuse", "deepinversion_2k", "frami_short")},
    "frami_no_reuse": ("frami", {"distillation": {"reuse_pre": 0.0, "reuse_post": 0.0}}),
    "deepinversion_2k": ("deepinversion_2k", {"inversion": {"method": "deepinversion", "warmup": 0},
                                              "distillation": {"synthesize": False}}),
    "frami_short": ("frami_short", {"inversion": {"method": "frami", "rounds": SHORT_ROUNDS, "warmup": 1},
                                    "distillation": {"eval_every": 2}}),
}
LONG_INVERSIONS, LONG_STEPS, LONG_BATCHES = ("deepinversion_2k",), 200, 1 / 6
# FSDD's speaker folds: leave one speaker out, for each speaker of ../shared/data/fsdd (a full FSDD release
# has a sixth, who then stays in every training split).
FSDD_SPEAKERS = ("george", "jackson", "nicolas", "theo", "yweweler")
# Each data set's official cross-validation folds (`folds="all"`); the quick protocol holds out one of them
# (ESC fold 5, UrbanSound8K fold 10, AudioMNIST speaker fold 5, FSDD takes 0-4 of every speaker).
FOLDS: dict[str, tuple[int | str, ...]] = {"esc10": esc50.FOLDS, "esc50": esc50.FOLDS,
                                           "urbansound8k": urbansound8k.FOLDS, "audiomnist": audiomnist.FOLDS,
                                           "fsdd": FSDD_SPEAKERS}
# The one method whose cell also trains the 'KD on real data' reference (the same for every method).
KD_REAL_CELL = "frami"
# Run spec sections per budget and data set. "full" is the committed table (and the demo) and the paper's
# data sets at GPU scale; "classroom" is notebook 04 as committed (a teacher at notebook 01's defaults, a
# short inversion and distillation); "tiny" tests the plumbing.
BUDGETS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "full": FULL_SIZE,
    "classroom": {name: {"inversion": {"rounds": 2, "warmup": 1},
                         "distillation": {"rounds": 2, "eval_every": 1, "kd_real_epochs": 1}}
                  for name in DATASETS + PAPER_DATASETS},
    "tiny": {name: {"data": {"n_per_class": 6} if name == "synthetic" else {},
                    "teacher": {"epochs": 1, "student_epochs": 1},
                    "inversion": {"rounds": 2, "warmup": 1, "steps_per_round": 1, "batch_size": 8,
                                  "student_steps": 1, "frames": [44, 52]},
                    "distillation": {"rounds": 2, "steps_per_round": 2, "synth_steps": 1, "batch_size": 8,
                                     "eval_every": 1, "kd_real_epochs": 1}}
             for name in DATASETS + PAPER_DATASETS},
}


@dataclass(frozen=True)
class Cell:
    """One number of the table: a method on a data set (and held-out fold) with one seed."""

    dataset: str
    fold: int | str | None
    seed: int
    method: str

    @property
    def label(self) -> str:
        return " ".join([self.dataset] + ([f"fold {self.fold}"] if self.fold is not None else [])
                        + [f"seed {self.seed}", self.method])


Folds = str | dict[str, str | list[int | str]]


def folds(dataset: str, which: Folds = "quick") -> list[int | str | None]:
    """The held-out folds of a data set's cells: "quick" the quick protocol's one (None); "all" every official
    fold (ESC-10/50 5, UrbanSound8K 10, AudioMNIST 5 speaker folds; FSDD's five speakers, each left out in
    turn: a new voice, which the official split never tests); or a mapping from data set to "quick", "all"
    or a list of its folds (part of a cross-validation, e.g. to spread it over machines or sessions)."""
    choice = which.get(dataset, "quick") if isinstance(which, dict) else which
    official = list(FOLDS.get(dataset, ()))
    if choice == "quick":
        return [None]
    if choice == "all":
        return official or [None]
    if isinstance(choice, (list, tuple)) and choice and all(f in official for f in choice) \
            and len(set(choice)) == len(choice):
        return list(choice)
    raise ValueError(f"folds for {dataset!r} must be 'quick', 'all' or a list of distinct folds out of "
                     f"{official or 'none (it has no folds)'}; got {choice!r}")


def row_name(dataset: str, which: Folds = "quick") -> str:
    """A data set's row in the table: its name under the quick protocol, "<name> (cross-validation)" under its
    folds, so that the two answer side by side (FSDD's official split tests voices it trained on, its speaker
    folds a new voice)."""
    return dataset if folds(dataset, which) == [None] else f"{dataset} (cross-validation)"


def protocol(dataset: str, evaluated: list[int | str | None]) -> str:
    """How a data set's row was evaluated, from the folds it averages (None: the quick protocol)."""
    if evaluated == [None]:
        return "quick"
    official = FOLDS[dataset]
    if sorted(map(str, evaluated)) == sorted(map(str, official)):
        return f"all {len(official)} folds" if dataset != "fsdd" else f"leave one speaker out ({len(official)} speakers)"
    return f"folds {', '.join(map(str, evaluated))} of {len(official)}"


def as_seeds(seeds: int | list[int] | tuple[int, ...]) -> list[int]:
    """`seeds` as a list of distinct ints (one int is one seed); anything else is refused."""
    values = [seeds] if isinstance(seeds, int) else list(seeds)
    if not values or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in values) \
            or len(set(values)) != len(values):
        raise ValueError(f"seeds must be one non-negative int or a list of distinct ones, e.g. [0, 1, 2]; got {seeds!r}")
    return values


def cell_folder(root: Path, dataset: str, fold: int | str | None) -> Path:
    """A data set's (or fold's) folder: its teacher and every seed's cells."""
    return root / (dataset if fold is None else f"{dataset}_fold{fold}")


def seed_folder(folder: Path, seed: int) -> Path:
    """Where one seed's cells sit in a data set's folder (seed 0 directly in it)."""
    return folder if seed == 0 else folder / f"seed{seed}"


def cell_layout(root: Path, cell: Cell) -> Layout:
    """The teacher is shared by the data set's cells, the inversion by the methods that distil from it."""
    folder = cell_folder(root, cell.dataset, cell.fold)
    seeds = seed_folder(folder, cell.seed)
    return Layout(folder / "teacher", seeds / SETTINGS[cell.method][0] / "inversion",
                  seeds / cell.method / "distillation")


def cell_spec(cell: Cell, budget: str, teacher_seed: int, data_root: str | None = None,
              teacher: RunSpec | None = None, device: str = "cpu") -> RunSpec:
    """The run spec of `cell` at `budget`; `teacher` (a reused teacher run's spec) fixes data and teacher."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; choose one of {sorted(BUDGETS)}")
    if cell.dataset not in BUDGETS[budget]:
        raise ValueError(f"budget {budget!r} has no settings for {cell.dataset!r}; it covers "
                         f"{sorted(BUDGETS[budget])}")
    if cell.method not in SETTINGS:
        raise ValueError(f"unknown method {cell.method!r}; choose from {list(METHODS)}")
    values = copy.deepcopy(BUDGETS[budget][cell.dataset])
    inversion_name, overrides = SETTINGS[cell.method]
    values.setdefault("data", {}).update(name=cell.dataset, root=data_root, fold=cell.fold)
    values.setdefault("teacher", {})["seed"] = teacher_seed
    inversion = values.setdefault("inversion", {})
    if inversion_name in LONG_INVERSIONS:
        defaults = InversionSpec()
        inversion.update(steps_per_round=LONG_STEPS * inversion.get("steps_per_round", defaults.steps_per_round),
                         rounds=max(1, round(LONG_BATCHES * inversion.get("rounds", defaults.rounds))))
    inversion["method"] = inversion_name
    for section, changes in overrides.items():
        values.setdefault(section, {}).update(changes)
    distillation = values.setdefault("distillation", {})
    if cell.method != KD_REAL_CELL:
        distillation["kd_real_epochs"] = 0
    if teacher is not None:
        values["data"], values["teacher"] = teacher.to_dict()["data"], {**teacher.to_dict()["teacher"],
                                                                        "seed": teacher.teacher_seed}
    return RunSpec.from_dict({**values, "seed": cell.seed, "device": device})


def finished(layout: Layout, spec: RunSpec) -> bool:
    """Whether the cell's distillation (and its 'KD on real data' reference, where asked) is done."""
    return layout.distill_metrics.is_file() and (not spec.distillation.kd_real_epochs
                                                 or layout.kd_real_metrics.is_file())


def _use_threads(cpus: float) -> None:
    torch.set_num_threads(max(1, int(cpus)))


# Ray tasks. Trailing arguments are the results of the tasks a task waits for (Ray passes a task's result,
# not its reference, once it is ready); they carry no data and are there only to order the grid.
def _data_task(spec: dict[str, Any], cpus: float) -> str:
    """Extract (or read back from the cache) a data set's features once, before its teacher parts."""
    _use_threads(cpus)
    pipeline.load_data(RunSpec.from_dict(spec))
    return spec["data"]["name"]


def _teacher_task(spec: dict[str, Any], layout: Layout, part: str, cpus: float, *data: str) -> str:
    """One teacher part (pipeline.teacher_parts), after `data`: the data set's _data_task."""
    _use_threads(cpus)
    pipeline.teacher_part(RunSpec.from_dict(spec), layout, part, resume=True, progress=False)
    return part


def _inversion_task(spec: dict[str, Any], layout: Layout, cpus: float, *teacher_parts: str) -> float:
    """A cell's inversion, after the `teacher_parts` it reads (the teacher and its judges)."""
    _use_threads(cpus)
    return pipeline.inversion_stage(RunSpec.from_dict(spec), layout, resume=True, progress=False)["diversity"]


def _distillation_task(spec: dict[str, Any], layout: Layout, cpus: float, inversion: float) -> float:
    """A cell's distillation, after its `inversion` (whose pool's diversity it receives)."""
    _use_threads(cpus)
    return pipeline.distillation_stage(RunSpec.from_dict(spec), layout, resume=True,
                                       progress=False)["student_accuracy"]


def run_grid(root: str | Path, cells: list[Cell], specs: dict[Cell, RunSpec], *, address: str | None = None,
             cpus_per_cell: float = 1, gpus_per_cell: float | None = None, progress: bool = True,
             on_finished: Callable[[Cell | None], None] | None = None) -> dict[str, str]:
    """Run the unfinished `cells` (each with its spec) under `root` on Ray; returns {task: error} for the
    tasks that failed (empty when every cell finished). `gpus_per_cell` None: one GPU per task where the
    cluster has GPUs, else none. `on_finished(cell)` runs here as each task finishes (cell None: a teacher's,
    a judge's or an inversion's), so that archive.keep keeps each teacher run as soon as it is done."""
    import ray

    root = Path(root)
    todo = [c for c in cells if not finished(cell_layout(root, c), specs[c])]
    if not todo:
        return {}
    started = not ray.is_initialized()
    if started:
        cluster = address or os.environ.get("RAY_ADDRESS")
        local = {} if cluster else {"object_store_memory": 256 * 2**20}  # cells pass numbers, not tensors
        ray.init(address=cluster, include_dashboard=False, log_to_driver=False, configure_logging=False, **local)
    gpus = gpus_per_cell if gpus_per_cell is not None else (1 if ray.cluster_resources().get("GPU") else 0)
    options = {"num_cpus": cpus_per_cell, "num_gpus": gpus, "max_retries": 2, "retry_exceptions": False}
    device = {"device": "cuda"} if gpus else {}
    teacher, inversion, distillation = (ray.remote(f).options(**options)
                                        for f in (_teacher_task, _inversion_task, _distillation_task))
    data = ray.remote(_data_task).options(**{**options, "num_gpus": 0})
    names: dict[Any, str] = {}
    datasets: dict[str, Any] = {}
    teachers: dict[Path, Any] = {}
    inversions: dict[Path, Any] = {}
    cells_done: dict[Any, Cell] = {}
    try:
        for cell in todo:
            layout, spec = cell_layout(root, cell), specs[cell].replace(**device)
            if cell.dataset not in datasets:
                # Decoding and feature extraction once per data set (into the feature cache), before its
                # teacher parts, which would otherwise each extract the same clips side by side.
                datasets[cell.dataset] = data.remote(spec.to_dict(), cpus_per_cell)
                names[datasets[cell.dataset]] = f"{cell.dataset} features"
            if layout.teacher not in teachers:
                fold = "" if cell.fold is None else f" fold {cell.fold}"
                # The inversions wait for the teacher and its judges: those go first, the student from real
                # data (which only the table needs) last.
                order = sorted(pipeline.teacher_parts(spec), key=lambda part: part == "student_real")
                parts = {part: teacher.remote(spec.to_dict(), layout, part, cpus_per_cell, datasets[cell.dataset])
                         for part in order}
                names.update({ref: f"{cell.dataset}{fold} {part}" for part, ref in parts.items()})
                teachers[layout.teacher] = [ref for part, ref in parts.items() if part != "student_real"]
            if layout.inversion not in inversions:
                inversions[layout.inversion] = inversion.remote(spec.to_dict(), layout, cpus_per_cell,
                                                                *teachers[layout.teacher])
                names[inversions[layout.inversion]] = f"{cell.label} inversion"
            ref = distillation.remote(spec.to_dict(), layout, cpus_per_cell, inversions[layout.inversion])
            names[ref], cells_done[ref] = cell.label, cell
        return _wait(names, cells_done, progress, on_finished)
    except KeyboardInterrupt:
        for ref in names:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


def _wait(names: dict[Any, str], cells: dict[Any, Cell], progress: bool,
          on_finished: Callable[[Cell | None], None] | None = None) -> dict[str, str]:
    """Wait for every task, one progress bar over the cells; {task: error} of those that failed, naming the
    task whose failure they inherited (a cell whose teacher failed reports the teacher's error)."""
    import ray

    errors: dict[str, str] = {}
    pending = list(names)
    bar = tqdm(total=len(cells), desc="benchmark grid", disable=not progress)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        ref = ready[0]
        try:
            ray.get(ref)
        except ray.exceptions.RayError as err:
            cause = getattr(err, "cause", None) or err
            errors[names[ref]] = f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1][:400]}"
        else:
            if on_finished is not None:
                on_finished(cells.get(ref))
        if ref in cells:
            bar.update()
            bar.set_postfix_str(names[ref])
    bar.close()
    return errors
