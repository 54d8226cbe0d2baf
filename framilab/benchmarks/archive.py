"""Finished benchmark cells kept in the repository, so the grid resumes in another session or on another machine.

The whole table takes more hours than one session or one machine's lease gives, and its run folder (runs/,
outside git) does not outlive the machine. So each finished piece is copied, as it finishes, into a small
tracked folder laid out like the run folder (grid.cell_layout):
- a data set's (or fold's) teacher run: the teacher and its judges (what later seeds and methods need, so
  that every cell of a row is compared on one teacher) and the teacher's and the real-data student's metrics.
  Their weights are the archive's only large files (about 8 MB a data set at full size), kept because a
  teacher trained again from the same spec differs on another host (FSDD's, trained on an Intel AVX-512
  host, came out another teacher on an AMD AVX-512 one: figures/results.md, run 9), and a different teacher
  would send every archived cell of its row back to be run again;
- an inversion with every distillation that reads it (FRAMI with and without reuse share one): their specs
  and metrics, which the table is made of, and the latest samples of each class in dB, which its sample
  figure draws. A group is kept only once all of its cells have finished, and restored only whole, so the
  methods that share a pool are never paired across two inversion runs.
Checkpoints of unfinished training and the pools themselves (megabytes per cell) stay behind.

`restore` copies the archive into a run folder before the grid starts, where the run folder lacks a piece and
the spec the grid asks for equals the archived one in what the piece depends on; a piece made with other
settings or on another teacher stays in the archive, named in a printed line, and is run again.
"""
from __future__ import annotations

import dataclasses
import filecmp
import shutil
from pathlib import Path

import torch

from ..cache import atomic_save
from ..checkpoint import load_teacher
from ..features import Normalizer
from ..judges import FOLDER as JUDGES, JUDGE
from ..layout import (DISTILL_METRICS, INVERSION_METRICS, KD_REAL_METRICS, SPEC, STUDENT_REAL, TEACHER, Layout,
                      metrics_name, model_name)
from ..pipeline import differing
from ..spec import RunSpec
from ..synthesis import Pool
from .grid import SETTINGS, Cell, cell_layout, finished

# What a finished piece keeps of its stage folder; the teacher's judges are found by their metrics.
TEACHER_FILES = (model_name(TEACHER), metrics_name(TEACHER), metrics_name(STUDENT_REAL), SPEC)
JUDGE_FILES = (model_name(JUDGE), metrics_name(JUDGE))
INVERSION_FILES = (INVERSION_METRICS, SPEC)
DISTILLATION_FILES = (DISTILL_METRICS, KD_REAL_METRICS, SPEC)
# The samples a kept inversion leaves for the sample figure (report.sample_grid draws as many): the latest of
# each class, in dB, half precision (about 0.26 MB a group at 64 mels).
SAMPLES = "samples.pt"
SAMPLES_PER_CLASS = 2

Group = list[Cell]


def groups(cells: list[Cell]) -> list[Group]:
    """The cells by the inversion they distil from (data set, fold, seed, synthesis method)."""
    out: dict[tuple[str, int | str | None, int, str], Group] = {}
    for cell in cells:
        out.setdefault((cell.dataset, cell.fold, cell.seed, SETTINGS[cell.method][0]), []).append(cell)
    return list(out.values())


def keep(root: str | Path, archive: str | Path, cells: list[Cell], specs: dict[Cell, RunSpec]) -> list[str]:
    """Copy into `archive` every finished teacher run of `cells` (as soon as it finishes: a teacher trained again
    on another host is another teacher) and every group that has finished under `root` and that the archive
    does not hold as it is there. A teacher other than the archived one is refused, with a printed line: the
    archived cells were made on the old one, and a run must not delete finished results. Returns the folders
    added."""
    root, archive = Path(root), Path(archive)
    added, refused = [], set()
    for group in groups(cells):
        here, kept = cell_layout(root, group[0]), cell_layout(archive, group[0])
        if not here.teacher_metrics.is_file():
            continue
        if kept.teacher_metrics.is_file() and not _identical(here.teacher_metrics, kept.teacher_metrics):
            if here.teacher not in refused:
                refused.add(here.teacher)
                print(f"archive: {here.teacher} holds another teacher than {kept.teacher} (other teacher settings: "
                      "the first seed listed seeds the teacher); the archived cells stay and this run's pieces of "
                      f"that folder are not archived (to archive them instead, delete {kept.teacher.parent})")
            continue
        if _copy_teacher(here.teacher, kept.teacher):
            added.append(str(kept.teacher))
        done = all(finished(cell_layout(root, c), specs[c]) for c in group)
        if not done or _kept_whole(root, archive, group, specs):
            continue
        shutil.rmtree(kept.inversion, ignore_errors=True)
        for method in [m for m, (synthesis, _) in SETTINGS.items() if synthesis == SETTINGS[group[0].method][0]]:
            shutil.rmtree(cell_layout(archive, dataclasses.replace(group[0], method=method)).distillation,
                          ignore_errors=True)
        for cell in group:
            _copy(cell_layout(root, cell).distillation, cell_layout(archive, cell).distillation, DISTILLATION_FILES)
        _save_samples(here, kept.inversion)
        _copy(here.inversion, kept.inversion, INVERSION_FILES)
        added.append(str(kept.inversion))
    return added


def restore(archive: str | Path, root: str | Path, cells: list[Cell], specs: dict[Cell, RunSpec]) -> list[str]:
    """Copy the archived groups of `cells` (and their teacher runs) into `root` where `root` lacks them and the
    archived specs equal the cells' in what each stage depends on. Returns the folders restored."""
    root, archive = Path(root), Path(archive)
    restored = []
    for group in groups(cells):
        here, kept, spec = cell_layout(root, group[0]), cell_layout(archive, group[0]), specs[group[0]]
        if not kept.teacher_metrics.is_file() or not _same(kept.teacher, spec, "teacher"):
            continue
        if (not here.teacher_metrics.is_file() or _identical(here.teacher_metrics, kept.teacher_metrics)) \
                and _copy_teacher(kept.teacher, here.teacher):
            restored.append(str(here.teacher))
        if not _identical(here.teacher_metrics, kept.teacher_metrics):
            print(f"archive: {here.teacher} holds another teacher than {kept.teacher}: its archived cells stay there")
            continue
        whole = all(finished(cell_layout(archive, c), specs[c]) for c in group)
        if (not whole or (here.inversion / SPEC).is_file() or not _same(kept.inversion, spec, "inversion")
                or not all(_same(cell_layout(archive, c).distillation, specs[c], "distillation") for c in group)):
            continue
        for cell in group:
            _copy(cell_layout(archive, cell).distillation, cell_layout(root, cell).distillation, DISTILLATION_FILES)
        _copy(kept.inversion, here.inversion, (SAMPLES,) + INVERSION_FILES)
        restored.append(str(here.inversion))
    return restored


def samples(inversion: Path, normalizer: Normalizer) -> tuple[torch.Tensor, torch.Tensor] | None:
    """An inversion's samples in dB with their labels, for a figure: its whole pool where that is on disk,
    else the latest samples of each class that the archive kept; None where neither is."""
    if (inversion / "pool" / "meta.json").is_file():
        return Pool(inversion / "pool").spectrograms(normalizer)
    if (inversion / SAMPLES).is_file():
        kept = torch.load(inversion / SAMPLES, weights_only=True)
        return kept["db"].float(), kept["targets"]
    return None


def _kept_whole(root: Path, archive: Path, group: Group, specs: dict[Cell, RunSpec]) -> bool:
    """Whether the archive holds `group` exactly as `root` does (the same inversion and distillation runs)."""
    here, kept = cell_layout(root, group[0]), cell_layout(archive, group[0])
    return (_identical(here.inversion_metrics, kept.inversion_metrics)
            and all(finished(cell_layout(archive, c), specs[c])
                    and _identical(cell_layout(root, c).distill_metrics, cell_layout(archive, c).distill_metrics)
                    for c in group))


def _identical(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False)


def _same(archived: Path, spec: RunSpec, stage: str) -> bool:
    """Whether the archived `stage` run was made by `spec` (in what that stage depends on); says so where not."""
    differ = differing(archived, spec, stage)
    if differ:
        print(f"archive: {archived} was made with other {stage} settings ({', '.join(differ)}): running it again")
    return not differ


def _copy(source: Path, target: Path, names: tuple[str, ...]) -> None:
    """Copy those of `names` that `source` holds into `target`, in order (the spec last: a folder that has
    its spec is complete)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)


def _copy_teacher(source: Path, target: Path) -> bool:
    """The files of a finished teacher run (teacher, judges, metrics, spec) that `target` lacks, from `source`
    (the real-data student finishes after the cells start, so it can arrive later); whether any did."""
    copied = False
    parts = [(judge.parent, target / JUDGES / judge.parent.name, JUDGE_FILES)
             for judge in sorted((source / JUDGES).glob(f"*/{metrics_name(JUDGE)}"))]
    for folder, into, names in parts + [(source, target, TEACHER_FILES)]:
        missing = tuple(n for n in names if (folder / n).is_file() and not (into / n).is_file())
        _copy(folder, into, missing)
        copied = copied or bool(missing)
    return copied


def _save_samples(layout: Layout, target: Path) -> None:
    """The latest SAMPLES_PER_CLASS samples of each class in the inversion's pool, in dB, into target/SAMPLES."""
    teacher = load_teacher(layout.teacher_checkpoint)
    db, targets = Pool(layout.pool).spectrograms(teacher.normalizer)
    picks = torch.cat([(targets == k).nonzero().flatten()[-SAMPLES_PER_CLASS:]
                       for k in range(len(teacher.classes))]).sort().values
    target.mkdir(parents=True, exist_ok=True)
    atomic_save({"db": db[picks].half(), "targets": targets[picks]}, target / SAMPLES)
