"""Studies of FRAMI's settings on a validation signal that leaves the test split alone: its contrastive
views (`--study views`), its generator (`--study generators`, each with and without the term), the
contrastive term's design (`--study contrastive`: weight, pairing, which samples are negatives) and how the
generator takes its class (`--study conditioning`).

Each variant runs inversion and then distillation (the benchmark's full budget, same teacher, seed
and machine) and is scored by the data-free student's accuracy on real clips of the training split, so
the test split, which the benchmark table reports, plays no part in choosing FRAMI's settings. With
`--validation train` (the default) they are all the training clips: the student never sees them, but
the teacher learnt them, so students that copy it well all score near its training accuracy. With
`--validation held-out` one group of them (a training fold, one speaker, or every fifth clip:
data/validation.py; `--held-out-groups`, default the last) is held out of the teacher's and judges' training,
which this study then does under <out>/<data set>/held-out/<group>/, and the students are scored on that group;
with several groups (`all` is cross-validation) a seed's score is the pooled accuracy over their clips.
Where judges sit beside the teacher (judges.py; trained here with a teacher this study trains), the
pool's transfer accuracy is a second validation signal: judges learn from training clips only.

Rerun (teachers are trained with each data set's recipe unless --teachers names them; the committed
views study ran on one H100 in 8 processes side by side, 50-83 s a run; one process runs them in turn):
    FRAMILAB_DATA=../shared/data python -m framilab.benchmarks.views --seeds 0 1 --device cuda
    python -m framilab.benchmarks.views --study generators --datasets synthetic --seeds 0 1 2
    python -m framilab.benchmarks.views --study contrastive --validation held-out --datasets esc10 --seeds 0 1 2
    python -m framilab.benchmarks.views --study contrastive --validation held-out --held-out-groups all --datasets esc10
Prints one table per data set (means over the seeds) and writes <out>/results.json and
<out>/samples_<study>_<data set>.png (real clips beside each variant's pool, seed 0), each name ending
in _held-out with `--validation held-out`.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from statistics import mean
from typing import Any

from matplotlib.figure import Figure

from ..checkpoint import TrainedModel, load_teacher
from ..data import load_dataset, load_splits
from ..data.validation import held_out_groups, split_off_validation
from ..distillation import run_distillation
from ..inversion import run_inversion
from ..judges import train_judges
from ..layout import POOL, Layout
from ..plots import real_vs_synthetic, save_figure
from ..recipes import DEFAULT_TEACHER, recipe, train_by_recipe
from ..run import FULL_SIZE
from ..synthesis import Pool
from ..synthesis.synthesizer import GENERATORS as SYNTH_GENERATORS

# Variant -> (synthesis method, SynthConfig overrides). FRAMI's default views are 40-80% time crops
# with SpecAugment masks; CMI's are resized crops with time flips.
VIEWS: dict[str, tuple[str, dict[str, Any]]] = {
    "cmi": ("cmi", {}),
    "frami_no_fic": ("frami_no_fic", {}),
    "frami crops 0.4-0.8, masks": ("frami", {"crop_min": 0.4, "crop_max": 0.8, "view_masking": True}),
    "frami crops 0.7-1.0, masks": ("frami", {"crop_min": 0.7, "crop_max": 1.0, "view_masking": True}),
    "frami crops 0.7-1.0": ("frami", {"crop_min": 0.7, "crop_max": 1.0, "view_masking": False}),
    "frami whole + crop 0.4-0.8, masks": ("frami", {"crop_min": 0.4, "crop_max": 0.8, "view_masking": True,
                                                    "global_view": True}),
    "frami whole + crop 0.6-0.9, masks": ("frami", {"crop_min": 0.6, "crop_max": 0.9, "view_masking": True,
                                                    "global_view": True}),
    "frami whole + crop 0.4-0.8": ("frami", {"crop_min": 0.4, "crop_max": 0.8, "view_masking": False,
                                             "global_view": True}),
}
# Generators (synthesis/generator.py, events.py), each with FRAMI's contrastive term and without it.
GENERATORS: dict[str, tuple[str, dict[str, Any]]] = {
    f"{generator}{' + fic' if method == 'frami' else ''}": (method, {"generator": generator})
    for generator in SYNTH_GENERATORS for method in ("frami_no_fic", "frami")
}
# FRAMI's contrastive term with the default (2d) generator: off, as built, weaker, paired with the whole
# sample, and pushing each sample only from other classes' samples or only from its own class's.
CONTRASTIVE: dict[str, tuple[str, dict[str, Any]]] = {
    "no fic": ("frami_no_fic", {}),
    "fic": ("frami", {}),
    "fic 0.1": ("frami", {"fic": 0.1}),
    "fic whole + crop": ("frami", {"global_view": True}),
    "fic other-class negatives": ("frami", {"negatives": "other_class"}),
    "fic same-class negatives": ("frami", {"negatives": "same_class"}),
}
# How the default (2d) generator takes its class (generator.CLASS_INPUTS), without and with FRAMI's term,
# and the term at twice its weight against the within-class collapse a class shift brings.
CONDITIONING: dict[str, tuple[str, dict[str, Any]]] = {
    **{f"2d{', class shift' if class_input == 'shift' else ''}{' + fic' if method == 'frami' else ''}":
       (method, {"generator": "2d", "class_input": class_input})
       for method in ("frami_no_fic", "frami") for class_input in ("scale", "shift")},
    "2d, class shift + fic 1.0": ("frami", {"generator": "2d", "class_input": "shift", "fic": 1.0}),
}
STUDIES = {"views": VIEWS, "generators": GENERATORS, "contrastive": CONTRASTIVE, "conditioning": CONDITIONING}
COLUMNS = ("teacher_accuracy_on_pool", "transfer_accuracy", "diversity", "validation_accuracy", "minutes")
VALIDATIONS = ("train", "held-out")


def run_variant(teacher_path: Path, run_dir: Path, method: str, overrides: dict[str, Any], dataset: str,
                validation: Any, seed: int, device: str = "cpu") -> dict[str, Any]:
    """Inversion + distillation of one variant at the full budget; resumes a finished or interrupted run."""
    inv = FULL_SIZE[dataset]["inversion"]
    dis = FULL_SIZE[dataset]["distillation"]
    layout = Layout(teacher_path.parent, run_dir / "inversion", run_dir / "distillation", teacher_path.name)
    metrics_path = layout.inversion_metrics
    if metrics_path.is_file():
        inversion = json.loads(metrics_path.read_text())
    else:
        inversion = run_inversion(teacher_path, layout.inversion, method, rounds=inv["rounds"], warmup=inv["warmup"],
                                  steps=inv["steps_per_round"], frames=inv.get("frames"), seed=seed, resume=True,
                                  device=device, **overrides)
    done = layout.distill_metrics
    if done.is_file():
        distill = json.loads(done.read_text())
    else:
        distill = run_distillation(teacher_path, layout.inversion, layout.distillation, method=method,
                                   rounds=dis["rounds"], steps_per_round=dis["steps_per_round"], steps=dis["synth_steps"],
                                   eval_set=validation, eval_every=dis["eval_every"], seed=seed, resume=True,
                                   device=device, **overrides)
    seconds = (inversion["seconds"] + inversion["student_seconds"] + distill["synthesis_seconds"]
               + distill["distill_seconds"])
    return {"teacher_accuracy_on_pool": inversion["teacher_accuracy_on_pool"],
            "transfer_accuracy": inversion.get("transfer_accuracy", float("nan")), "diversity": inversion["diversity"],
            "validation_accuracy": distill["student_accuracy"], "minutes": seconds / 60,
            "curve": [(r["round"], r["student_accuracy"]) for r in distill["history"] if "student_accuracy" in r]}


def _run_dir(base: Path, seed: int, variant: str) -> Path:
    return base / f"seed{seed}" / re.sub(r"[^a-z0-9.-]+", "_", variant)


def samples_figure(teacher: TrainedModel, dataset: str, run_dirs: dict[str, Path]) -> Figure:
    """Real held-out clips beside the end of each variant's pool, a row per class, one dB scale."""
    test = load_dataset(dataset, split="test", config=teacher.feature_config, progress=False)
    sources = {name: Pool(run_dir / "inversion" / POOL).spectrograms(teacher.normalizer)
               for name, run_dir in run_dirs.items()}
    return real_vs_synthetic(teacher.feature_config, teacher.classes, test.tensors(), sources,
                             title=f"{dataset}: a real test clip and each variant's last pool sample, per class")


def teacher_for(dataset: str, teacher_path: Path | None, base: Path, device: str, held_out: str | None = None) -> Path:
    """The given teacher, or one trained with the data set's recipe under `base` with its judges (kept for
    reruns); with `held_out` (a group's name), on the training split less that group (scored on it)."""
    if teacher_path is not None:
        if not teacher_path.is_file():
            raise FileNotFoundError(f"no teacher checkpoint at {teacher_path}: pass an existing one, or none to "
                                    "train one with the data set's recipe")
        return teacher_path
    run_dir = base / "teacher"
    if not (run_dir / "teacher.pt").is_file():
        splits = load_splits(dataset, progress=False)
        if held_out is not None:
            splits = split_off_validation(splits[0], held_out)[:2]
        train_by_recipe(DEFAULT_TEACHER, dataset, run_dir, splits, resume=True, device=device)
        train_judges(*splits, run_dir / "teacher.pt", recipe(dataset), resume=True, device=device)
    return run_dir / "teacher.pt"


def pooled(rows: dict[str, dict[str, Any]], sizes: dict[str, int]) -> dict[str, Any]:
    """One seed's row over several held-out groups: accuracy and its curve pooled over their clips, pool
    metrics averaged, minutes summed; each group's own row kept under "groups"."""
    if len(rows) == 1:
        return next(iter(rows.values()))
    total = sum(sizes.values())
    weighted = {g: sizes[g] / total for g in rows}
    curves = [row["curve"] for row in rows.values()]
    return {"teacher_accuracy_on_pool": mean(r["teacher_accuracy_on_pool"] for r in rows.values()),
            "transfer_accuracy": mean(r["transfer_accuracy"] for r in rows.values()),
            "diversity": mean(r["diversity"] for r in rows.values()),
            "validation_accuracy": sum(weighted[g] * r["validation_accuracy"] for g, r in rows.items()),
            "minutes": sum(r["minutes"] for r in rows.values()),
            "curve": [(points[0][0], sum(weighted[g] * p[1] for g, p in zip(rows, points)))
                      for points in zip(*curves)],
            "groups": rows}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "fsdd"], choices=sorted(FULL_SIZE))
    parser.add_argument("--teachers", nargs="+", type=Path,
                        help="one teacher checkpoint per data set (default: trained with its recipe under --out)")
    parser.add_argument("--study", default="views", choices=sorted(STUDIES))
    parser.add_argument("--variants", nargs="+", help="some of the study's variants (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--validation", default="train", choices=VALIDATIONS,
                        help="score students on every training clip (the teacher learnt them), or on a group of "
                             "them held out of the teacher's training (it trains its own teacher and judges)")
    parser.add_argument("--held-out-groups", nargs="+",
                        help="with --validation held-out: the groups held out in turn, each with its own teacher "
                             "(fold1, a speaker's name, fifth0; 'all': every one; default: the last)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--out", type=Path, help="default: runs/bench-<study>")
    args = parser.parse_args(argv)
    variants = STUDIES[args.study]
    args.out = args.out or Path(f"runs/bench-{args.study}")
    unknown = sorted(set(args.variants or []) - set(variants))
    if unknown:
        parser.error(f"study {args.study!r} has no variant(s) {unknown}; its variants: {list(variants)}")
    if args.teachers and len(args.teachers) != len(args.datasets):
        parser.error(f"give one teacher per data set: {len(args.datasets)} data sets, {len(args.teachers)} teachers")
    held_out = args.validation == "held-out"
    suffix = "_held-out" if held_out else ""
    if held_out and args.teachers:
        parser.error("--validation held-out scores students on clips the teacher must never have learnt, so it "
                     "trains its own teacher and judges without them: leave --teachers out")
    if args.held_out_groups and not held_out:
        parser.error("--held-out-groups names groups of the training split to hold out: add --validation held-out")
    results: dict[str, dict[str, Any]] = {}
    scored_on: dict[str, str] = {}
    for i, dataset in enumerate(args.datasets):
        folds: list[tuple[str | None, Path]] = [(None, args.out / dataset)]
        if held_out:
            choices = held_out_groups(load_dataset(dataset, split="train", progress=False))
            groups = choices if args.held_out_groups == ["all"] else args.held_out_groups or choices[-1:]
            if set(groups) - set(choices):
                parser.error(f"{dataset} has no held-out group(s) {sorted(set(groups) - set(choices))}; "
                             f"its groups: {choices} (or 'all')")
            folds = [(group, args.out / dataset / "held-out" / group) for group in groups]
        rows: dict[str, dict[int, dict[str, Any]]] = {name: {seed: {} for seed in args.seeds}
                                                      for name in args.variants or list(variants)}
        sizes: dict[str, int] = {}
        for group, base in folds:
            teacher_path = teacher_for(dataset, args.teachers[i] if args.teachers else None, base, args.device, group)
            teacher = load_teacher(teacher_path)
            validation = load_dataset(dataset, split="train", config=teacher.feature_config, progress=False)
            scored_on[dataset] = f"the real training clips ({len(validation)})"
            if group is not None:
                split = split_off_validation(validation, group)
                validation = split.held_out
            sizes[str(group)] = len(validation)
            for name in rows:
                method, overrides = variants[name]
                for seed in args.seeds:
                    row = run_variant(teacher_path, _run_dir(base, seed, name), method, overrides, dataset,
                                      validation, seed, args.device)
                    rows[name][seed][str(group)] = row
                    print(json.dumps({dataset: {name: {seed: {**row, "group": group}}}}), flush=True)
            if group == folds[0][0]:
                fig = samples_figure(teacher, dataset, {name: _run_dir(base, args.seeds[0], name) for name in rows})
                save_figure(fig, args.out / f"samples_{args.study}_{dataset}{suffix}.png")
        if held_out:
            scored_on[dataset] = (f"the training split's group(s) {', '.join(sizes)} ({sum(sizes.values())} clips), "
                                  "each held out of its own teacher's and judges' training")
        results[dataset] = {}
        for name, by_seed in rows.items():
            seeds = {seed: pooled(by_group, sizes) for seed, by_group in by_seed.items()}
            results[dataset][name] = {"seeds": seeds, **{c: mean(r[c] for r in seeds.values()) for c in COLUMNS}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"results{suffix}.json").write_text(json.dumps(results, indent=2))
    for dataset, by_name in results.items():
        print(f"\n{dataset}: the data-free student's accuracy on {scored_on[dataset]} (validation), full "
              f"budget, seeds {args.seeds}, {args.device}; means over seeds")
        print("| variant | " + " | ".join(COLUMNS) + " | validation accuracy per seed |\n|---|" + "---|" * (len(COLUMNS) + 1))
        for name, row in by_name.items():
            per_seed = ", ".join(f"{r['validation_accuracy']:.3f}" for r in row["seeds"].values())
            print(f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in COLUMNS) + f" | {per_seed} |")
    return results


if __name__ == "__main__":
    main()
