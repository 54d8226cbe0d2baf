"""The chain 01 -> 02 -> 03 and notebook 04 through papermill with tiny parameters, then nbval on the results.

nbval re-runs each executed notebook and compares its outputs with the stored ones (timings,
progress bars and paths sanitised): same seed, same numbers, or the test fails.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_nbval

from framilab.benchmarks import report
from framilab.run import STAGES, run_chain, run_stage

ROOT = Path(__file__).resolve().parents[1]


# Seconds, not minutes: every stage on the embedded data with the smallest sensible budgets.
COMMON = {"seed": 0, "figures_dir": None, "overwrite": True, "batch_size": 20, "w_fic": 0.25}
TINY = {
    "teacher": {"epochs": 2, "n_per_class": 4, "student_epochs": 1},
    "inversion": {"rounds": 2, "warmup": 0, "steps_per_round": 2, "student_steps": 1, "gallery_rounds": 1},
    "distillation": {"rounds": 2, "steps_per_round": 2, "synth_steps": 1, "eval_every": 1, "kd_real_epochs": 1},
}


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, Path]:
    """The chain run by framilab.run.run_chain, which wires each stage's outputs into the next."""
    base = tmp_path_factory.mktemp("chain")
    summary = run_chain(stages=list(STAGES), common=COMMON, per_stage=TINY, progress=False, root=base)
    assert set(summary["minutes"]) == set(STAGES)
    assert {"teacher_accuracy", "student_real_accuracy", "teacher_accuracy_on_pool", "student_accuracy",
            "kd_real_accuracy"} <= set(summary)
    return {stage: base / notebook for stage, notebook in STAGES.items()}


def test_the_chain_writes_every_stage_output(executed):
    base = executed["teacher"].parent
    teacher = json.loads((base / "teacher" / "teacher_metrics.json").read_text())
    for key in ("test_accuracy", "per_class_accuracy", "epochs", "train_seconds", "params",
                "mflops_per_second_of_audio"):
        assert key in teacher
    assert teacher["epochs"] == 2
    for name in ("teacher.pt", "student_real.pt", "student_real_metrics.json", "spec.json", "synthetic_classes.png",
                 "synthetic_teacher_curves.png", "synthetic_teacher_confusion.png"):
        assert (base / "teacher" / name).is_file(), name
    inversion = json.loads((base / "inversion" / "inversion_metrics.json").read_text())
    assert inversion["samples"] == 40 and "diversity" in inversion and "frechet_distance" in inversion
    distill = json.loads((base / "distillation" / "distill_metrics.json").read_text())
    for key in ("student_accuracy", "teacher_accuracy", "synthesis_seconds", "distill_seconds"):
        assert key in distill
    assert inversion["config"]["fic"] == distill["synthesis_config"]["fic"] == 0.25, "-p w_fic reaches both stages"
    assert "accuracy" in json.loads((base / "distillation" / "kd_real_metrics.json").read_text())
    for name in ("inversion_loss_terms.png", "inversion_frami_samples.png", "inversion_frami_diversity.png"):
        assert (base / "inversion" / name).is_file(), name
    assert (base / "distillation" / "distillation_frami_comparison.png").is_file()
    assert not list((base / "inversion").glob("distill*")), "distillation writes only its own folder"


def test_a_rerun_reads_the_same_settings_back_and_sets_other_settings_aside(executed, tmp_path):
    """Classroom reruns need no flags: the same parameters read the finished teacher back (nothing retrained);
    changed ones train a new teacher and move the earlier run, untouched, to teacher-<hash>/."""
    base = tmp_path / "chain"
    shutil.copytree(executed["teacher"].parent / "teacher", base / "teacher")
    trained = (base / "teacher" / "teacher.pt").read_bytes()
    same = {**TINY["teacher"], "batch_size": COMMON["batch_size"], "run_dir": str(base), "figures_dir": None}
    run_stage("teacher", same, tmp_path / "again.ipynb", progress=False)
    assert (base / "teacher" / "teacher.pt").read_bytes() == trained
    assert sorted(p.name for p in base.iterdir()) == ["teacher"]
    run_stage("teacher", {**same, "epochs": 1}, tmp_path / "other.ipynb", progress=False)
    (aside,) = [p for p in base.iterdir() if p.name.startswith("teacher-")]
    assert (aside / "teacher.pt").read_bytes() == trained
    assert json.loads((aside / "spec.json").read_text())["teacher"]["epochs"] == 2
    assert json.loads((base / "teacher" / "teacher_metrics.json").read_text())["epochs"] == 1
    assert "moved it to" in (tmp_path / "other.ipynb").read_text()


def test_live_plots_keep_their_final_image(executed):
    """The live dashboard's Output widgets hold a PNG in the saved widget state of the executed notebook."""
    notebook = json.loads(executed["inversion"].read_text())
    state = notebook["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    outputs = [m["state"].get("outputs", []) for m in state.values() if m["model_name"] == "OutputModel"]
    images = [o for outs in outputs for o in outs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "spectrogram grid, loss curves and diversity plot"


@pytest.mark.parametrize("stage", list(STAGES))
def test_nbval_reproduces_the_executed_notebook(executed, stage):
    result = run_nbval([executed[stage]], ROOT)
    assert result.returncode == 0, result.stdout[-4000:]


def test_benchmark_notebook(tmp_path):
    """Notebook 04 at budget tiny and two seeds through papermill: the table, its JSON shape and figures; then
    nbval re-runs it (finished cells are kept, so the same numbers must come back)."""
    out = tmp_path / "04_benchmark.ipynb"
    methods = ["frami_no_reuse", "frami"]
    run_stage("benchmark", {"budget": "tiny", "datasets": ["synthetic"], "methods": methods, "teachers": None,
                            "seeds": [0, 1], "root": str(tmp_path / "bench"), "figures_dir": str(tmp_path / "figures")},
              out,
              progress=False)
    results = json.loads((tmp_path / "figures" / "results.json").read_text())
    assert set(results) == {"synthetic"}
    row = results["synthetic"]
    assert {"teacher", "student_real", "kd_real", "methods"} <= set(row)
    assert list(row["methods"]) == methods
    for method in methods:
        cell = row["methods"][method]
        assert 0 <= cell["accuracy"] <= 1 and cell["cpu_minutes"] > 0
        assert set(cell["seeds"]) == {"0", "1"} and cell["accuracy"] == pytest.approx(sum(cell["seeds"].values()) / 2)
    assert (tmp_path / "bench" / "synthetic" / "seed1" / "frami_no_reuse" / "distillation" / "distill_metrics.json").is_file()
    assert not (tmp_path / "bench" / "synthetic" / "seed1" / "frami_no_reuse" / "inversion").exists()
    assert row["run"]["seeds"] == [0, 1] and set(row["kd_real_seeds"]) == {"0", "1"}
    table = (tmp_path / "figures" / "results.md").read_text()
    assert "| data-free: frami_no_reuse |" in table and "| KD on real data |" in table
    assert "Per-class accuracy on the real test split" in table
    for name in ("accuracy_vs_time.png", "per_class_accuracy.png", "samples_synthetic.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 5_000, name
    samples = report.sample_grid(tmp_path / "bench", "synthetic", methods)
    titles = [ax.get_title(loc="left") for ax in samples.axes if ax.get_title(loc="left")]
    assert titles == ["real", "frami"], "real test clips, then the one synthesis both methods share"
    result = run_nbval([out], ROOT)
    assert result.returncode == 0, result.stdout[-4000:]
