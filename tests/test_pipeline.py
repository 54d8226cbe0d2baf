"""The pipeline as a library object: one spec, one layout, stages that resume and refuse another spec's folder,
and the benchmark grid on a local Ray."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fixtures import make_audiomnist, make_urbansound8k
from framilab.benchmarks import archive, grid, report, results, table
from framilab.data import load_dataset
from framilab.layout import Layout
from framilab import pipeline
from framilab.synthesis import methods as synthesis_methods
from framilab.pipeline import SpecMismatchError, continue_spec, run_pipeline, spec_in
from framilab.spec import RunSpec

TINY = grid.BUDGETS["tiny"]["synthetic"]
# Long enough that each stage has a round to die after and one still to do.
KILLED = RunSpec.from_dict({**TINY, "teacher": {**TINY["teacher"], "epochs": 2},
                            "inversion": {**TINY["inversion"], "rounds": 3}})
# Runs the chain stage by stage and SIGKILLs itself at the second epoch or round of one stage (after the first
# one's checkpoint; distillation's evaluation comes before its round's checkpoint).
KILLER = """
import os, signal, sys
from pathlib import Path
from framilab import pipeline
from framilab.layout import Layout
from framilab.spec import RunSpec

spec, layout, stage = RunSpec.load(sys.argv[1]), Layout.chain(Path(sys.argv[2])), sys.argv[3]
calls = []
die = lambda *_: calls.append(1) or (len(calls) == 2 and os.kill(os.getpid(), signal.SIGKILL))
pipeline.teacher_stage(spec, layout, resume=True, progress=False, on_epoch=die if stage == "teacher" else None)
pipeline.inversion_stage(spec, layout, resume=True, progress=False, on_round=die if stage == "inversion" else None)
pipeline.distillation_stage(spec, layout, resume=True, progress=False, on_eval=die if stage == "distillation" else None)
"""


def _mtimes(folder):
    return {p.relative_to(folder): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_a_spec_reads_back_from_json_and_yaml_and_refuses_unknown_names(tmp_path):
    spec = RunSpec.from_dict({"data": {"name": "fsdd", "fold": "theo"}, "teacher": {"judges": ["tdnn-teacher"]},
                              "inversion": {"frames": [40, 60], "synth": {"fic": 0.0, "generator": "2d"}}, "seed": 2})
    for name in ("spec.json", "spec.yaml"):
        spec.save(tmp_path / name)
        assert RunSpec.load(tmp_path / name) == spec
    assert spec.inversion.frames == (40, 60) and spec.teacher.judges == ("tdnn-teacher",)
    assert spec.inversion.weights() == {"fic": 0.0, "generator": "2d", "steps": 10, "warmup": 1}
    with pytest.raises(ValueError, match=r"unknown field\(s\) of the run spec's 'inversion' section \['round'\]; "
                                         r"valid names: \['batch_size', 'frames', 'method', 'rounds'"):
        RunSpec.from_dict({"inversion": {"round": 3}})
    with pytest.raises(ValueError, match=r"unknown run spec section\(s\) \['distilation'\]"):
        RunSpec.from_dict({"distilation": {}})
    with pytest.raises(ValueError, match=r"unknown synthesis setting\(s\) in inversion.synth \['fik'\]"):
        RunSpec.from_dict({"inversion": {"synth": {"fik": 0.0}}})
    with pytest.raises(ValueError, match="inversion.synth sets \\['steps'\\]: give them as inversion.steps_per_round"):
        RunSpec.from_dict({"inversion": {"synth": {"steps": 3}}})
    with pytest.raises(ValueError, match="unknown synthesis method 'framy'"):
        RunSpec.from_dict({"inversion": {"method": "framy"}})
    assert spec.replace(device="cuda").stage_part("distillation") == spec.stage_part("distillation"), \
        "where a run ran is not what it is"


def test_a_saved_spec_records_its_methods_resolved_settings_so_a_changed_default_is_not_reused(tmp_path, monkeypatch):
    """Overrides alone would read an old run back as current once a method's default changes (the generator went
    from 1-D to 2-D that way); the saved spec also records every synthesis setting, a setting added since a run
    was saved reads as its default (what framilab did before it), and a spec saved by an older framilab (without
    any) compares as before."""
    spec = RunSpec.from_dict({"inversion": {"method": "frami", "synth": {"fic": 0.1}}})
    spec.save(tmp_path / "spec.json")
    assert json.loads((tmp_path / "spec.json").read_text())["synthesis"]["generator"] == "2d"
    assert RunSpec.load(tmp_path / "spec.json") == spec and pipeline.differing(tmp_path, spec, "inversion") == []
    monkeypatch.setitem(synthesis_methods.METHODS, "frami", synthesis_methods.FRAMI.replace(generator="1d", bn=0.1))
    assert pipeline.differing(tmp_path, spec, "inversion") == ["synthesis.bn", "synthesis.generator"]
    assert pipeline.differing(tmp_path, spec, "distillation") == ["synthesis.bn", "synthesis.generator"]
    assert pipeline.differing(tmp_path, spec, "teacher") == [], "the teacher does not depend on synthesis"
    monkeypatch.undo()
    before_class_input = json.loads((tmp_path / "spec.json").read_text())
    del before_class_input["synthesis"]["class_input"]
    (tmp_path / "spec.json").write_text(json.dumps(before_class_input))
    assert pipeline.differing(tmp_path, spec, "inversion") == []
    shifted = spec.replace(inversion={"synth": {"fic": 0.1, "class_input": "shift"}})
    assert pipeline.differing(tmp_path, shifted, "inversion") == ["inversion.synth.class_input", "synthesis.class_input"]
    older = json.loads((tmp_path / "spec.json").read_text())
    del older["synthesis"]
    (tmp_path / "spec.json").write_text(json.dumps(older))
    assert pipeline.differing(tmp_path, spec, "inversion") == []


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The whole chain from the library alone, at the tiny budget, with FRAMI's contrastive term re-weighted."""
    root = tmp_path_factory.mktemp("chain")
    spec = RunSpec.from_dict({**TINY, "inversion": {**TINY["inversion"], "synth": {"fic": 0.25}}})
    return spec, root, run_pipeline(spec, root, progress=False)


def test_the_library_runs_a_whole_row_and_each_stage_writes_its_own_folder(chain):
    spec, root, summary = chain
    assert set(summary) == {"teacher_accuracy", "student_real_accuracy", "teacher_accuracy_on_pool", "pool_diversity",
                            "transfer_accuracy", "student_accuracy", "kd_real_accuracy"}
    layout = Layout.chain(root)
    for folder in (layout.teacher, layout.inversion, layout.distillation):
        assert spec_in(folder) == spec
    assert not list(layout.inversion.glob("distill*")) and not list(layout.inversion.glob("student*"))
    inversion = json.loads(layout.inversion_metrics.read_text())
    distillation = json.loads(layout.distill_metrics.read_text())
    assert inversion["config"]["fic"] == distillation["synthesis_config"]["fic"] == 0.25, \
        "a synthesis override reaches both synthesis stages"
    assert distillation["synthesis_config"]["steps"] == spec.distillation.synth_steps
    assert len(list(layout.pool.glob("shard_*.pt"))) == 1, "two rounds, one of them warm-up"
    assert len(list((layout.distillation / "pool").glob("shard_*.pt"))) == 3, "the inversion's shard and two new"


def test_a_finished_chain_is_read_back_not_run_again(chain):
    spec, root, summary = chain
    before = _mtimes(root)
    assert run_pipeline(spec, root, progress=False) == summary
    assert _mtimes(root) == before


def test_overwrite_wins_over_resume_and_runs_the_stage_again(chain, tmp_path):
    spec, root, _ = chain
    shutil.copytree(root, tmp_path / "chain")
    layout = Layout.chain(tmp_path / "chain")
    shorter = spec.replace(distillation={"rounds": 1})
    metrics = pipeline.distillation_stage(shorter, layout, resume=True, overwrite=True, progress=False)
    assert [r["round"] for r in metrics["history"]] == [1], "the finished two-round run was replaced, not read back"
    assert spec_in(layout.distillation) == shorter


def test_another_spec_in_a_finished_folder_is_refused_by_name(chain):
    spec, root, _ = chain
    with pytest.raises(SpecMismatchError, match=r"holds a inversion-stage run of another spec \(it differs in "
                                                r"\['inversion.rounds', 'inversion.synth.fic', 'synthesis.fic'\]\)"):
        run_pipeline(spec.replace(inversion={"rounds": 3, "synth": {}}), root, progress=False)
    with pytest.raises(SpecMismatchError, match=r"differs in \['teacher.epochs'\]"):
        run_pipeline(spec.replace(teacher={"epochs": 2}), root, progress=False)


def test_a_later_stage_inherits_data_and_the_teachers_seed(chain):
    spec, root, _ = chain
    later = continue_spec(Layout.chain(root).teacher, seed=3, distillation={"rounds": 5})
    assert later.data == spec.data and later.teacher_seed == 0 and later.seed == 3
    with pytest.raises(FileNotFoundError, match="holds no finished earlier stage"):
        continue_spec(root / "nowhere")


def test_the_grid_runs_cells_on_ray_reports_a_failing_one_and_keeps_finished_ones(tmp_path):
    """Two methods x two seeds on synthetic, and an FSDD teacher whose data folder is missing: FSDD's cells fail
    with that error, the others finish, and a second run finds nothing to do."""
    root = tmp_path / "bench"
    with pytest.warns(UserWarning, match=r"(?s)failed.*fsdd teacher: FileNotFoundError: .*no-such-folder"):
        out = table.run_benchmark(root, ["synthetic", "fsdd"], ["cmi", "frami"], budget="tiny", seeds=[0, 1],
                                  data_roots={"fsdd": str(tmp_path / "no-such-folder")}, progress=False)
    assert set(out) == {"synthetic"} and set(out["synthetic"]["methods"]) == {"cmi", "frami"}
    assert set(out["synthetic"]["methods"]["frami"]["seeds"]) == {"0", "1"}
    assert out["synthetic"]["kd_real"] is not None and out["synthetic"]["student_real"] is not None
    assert all("transfer" in m for m in out["synthetic"]["methods"].values()), "inversions waited for the judges"
    before = _mtimes(root / "synthetic")
    again = table.run_benchmark(root, ["synthetic"], ["cmi", "frami"], budget="tiny", seeds=[0, 1], progress=False)
    assert again == results.collect(root, ["synthetic"], ["cmi", "frami"], seeds=[0, 1])
    assert _mtimes(root / "synthetic") == before, "finished cells are never run twice"


def test_the_archive_resumes_the_grid_in_a_fresh_run_folder_and_never_mixes_in_other_settings(tmp_path, capsys):
    """A session's run folder is gone in the next one: the tracked archive alone brings the finished cells back
    (no stage runs again, the table and sample figure are the same), keeps no pool or checkpoint, and leaves
    out a group made with other settings or a group missing one of the methods that share its pool."""
    kept = tmp_path / "figures" / "benchmark_cells"
    methods = ["deepinversion_2k", "frami", "frami_no_reuse"]
    first = table.run_benchmark(tmp_path / "session1", ["synthetic"], methods, budget="tiny", archive=kept,
                                progress=False)
    race = grid.cell_layout(tmp_path / "session1", grid.Cell("synthetic", None, 0, "deepinversion_2k"))
    inverted, distilled = (json.loads(p.read_text()) for p in (race.inversion_metrics, race.distill_metrics))
    assert (inverted["config"]["steps"], inverted["samples"]) == (200, 8), "DeepInversion's own budget, one batch"
    assert distilled["synthesis_seconds"] < 0.01 and distilled["pool_size"] == 8, "distilled from that pool alone"
    assert results.speed_race(first["synthetic"])["slow_minutes"] > 0
    files = sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file())
    assert "synthetic/teacher/teacher.pt" in files and "synthetic/frami/inversion/samples.pt" in files
    assert "synthetic/frami_no_reuse/distillation/distill_metrics.json" in files
    assert not [f for f in files if "pool" in f or f.endswith("_checkpoint.pt")], files
    samples = torch.load(kept / "synthetic/frami/inversion/samples.pt", weights_only=True)
    pool = torch.cat([torch.load(p, weights_only=True)["targets"]
                      for p in sorted((tmp_path / "session1/synthetic/frami/inversion/pool").glob("shard_*.pt"))])
    assert samples["db"].dtype == torch.float16 and samples["db"].shape[0] == len(samples["targets"])
    assert torch.bincount(samples["targets"], minlength=10).tolist() == \
        torch.bincount(pool, minlength=10).clamp(max=archive.SAMPLES_PER_CLASS).tolist()

    fresh = tmp_path / "session2"
    again = table.run_benchmark(fresh, ["synthetic"], methods, budget="tiny", archive=kept, progress=False)
    assert again == first
    assert not list(fresh.rglob("pool")) and not list(fresh.rglob("*_checkpoint.pt")), "nothing ran again"
    figure = report.sample_grid(fresh, "synthetic", methods)
    drawn = [torch.load(kept / f"synthetic/{m}/inversion/samples.pt", weights_only=True)["targets"]
             for m in ("deepinversion_2k", "frami")]
    panels = 10 * 2 + sum(torch.bincount(t, minlength=10).clamp(max=2).sum().item() for t in drawn)
    assert len([ax for ax in figure.axes if ax.collections and ax.get_label() != "<colorbar>"]) == panels, \
        "real clips and both archived pools"

    cells = [grid.Cell("synthetic", None, 0, m) for m in methods]
    specs = {c: grid.cell_spec(c, "tiny", 0) for c in cells}
    other = {c: s.replace(inversion={"rounds": 3}) for c, s in specs.items()}
    restored = archive.restore(kept, tmp_path / "session3", cells, other)
    assert [Path(p).name for p in restored] == ["teacher"], "the teacher, not the inversions of other settings"
    assert "was made with other inversion settings (inversion.rounds): running it again" in capsys.readouterr().out
    shutil.rmtree(kept / "synthetic" / "frami_no_reuse")
    restored = archive.restore(kept, tmp_path / "session4", cells, specs)
    assert sorted(Path(p).parent.name for p in restored) == ["deepinversion_2k", "synthetic"], \
        "frami's pool is shared with frami_no_reuse, which the archive lacks: the group runs again whole"


def test_the_archive_keeps_a_teacher_run_as_soon_as_it_finishes_before_any_cell(tmp_path):
    """A session stopped while every fold's cells are still running must not lose the fold teachers it trained:
    retrained on another host they would be other teachers. Each finished teacher run is kept at once, a
    judge that finishes later joins it, and no unfinished inversion is kept."""
    cells = [grid.Cell("fsdd", fold, 0, "frami") for fold in ("george", "jackson")]
    specs = {c: grid.cell_spec(c, "tiny", 0) for c in cells}
    run, kept = tmp_path / "run", tmp_path / "benchmark_cells"
    teacher = grid.cell_layout(run, cells[0]).teacher
    teacher.mkdir(parents=True)
    for name in archive.TEACHER_FILES:
        (teacher / name).write_text(name)
    assert archive.keep(run, kept, cells, specs) == [str(kept / "fsdd_foldgeorge" / "teacher")]
    assert sorted(p.name for p in (kept / "fsdd_foldgeorge" / "teacher").iterdir()) == sorted(archive.TEACHER_FILES)
    assert not (kept / "fsdd_foldjackson").exists(), "that fold's teacher has not finished"
    assert not list(kept.rglob("inversion")), "no cell has finished"
    assert archive.keep(run, kept, cells, specs) == [], "nothing new"
    judge = teacher / "judges" / "tdnn-teacher-seed1"
    judge.mkdir(parents=True)
    for name in archive.JUDGE_FILES:
        (judge / name).write_text(name)
    assert archive.keep(run, kept, cells, specs) == [str(kept / "fsdd_foldgeorge" / "teacher")]
    assert sorted(p.name for p in (kept / "fsdd_foldgeorge" / "teacher" / "judges" / "tdnn-teacher-seed1").iterdir()) \
        == sorted(archive.JUDGE_FILES)
    finished = kept / "fsdd_foldgeorge" / "frami" / "distillation" / "distill_metrics.json"
    finished.parent.mkdir(parents=True)
    finished.write_text("a finished cell on the archived teacher")
    (teacher / archive.TEACHER_FILES[1]).write_text("another teacher (e.g. seeds [1] seeds the teacher with 1)")
    assert archive.keep(run, kept, cells, specs) == [], "another teacher is refused"
    assert finished.read_text() == "a finished cell on the archived teacher", "and the archived cells stay"
    assert (kept / "fsdd_foldgeorge" / "teacher" / archive.TEACHER_FILES[1]).read_text() == archive.TEACHER_FILES[1]


@pytest.mark.parametrize("dataset,make,chosen,heldout", [
    ("urbansound8k", make_urbansound8k, [2, 7], 3),
    ("audiomnist", make_audiomnist, [1, 5], 20),
])
def test_a_cross_validation_holds_out_each_official_fold_and_averages_them(dataset, make, chosen, heldout,
                                                                           tmp_path):
    """Paper-layout fixtures: each fold's teacher is tested on exactly that fold's clips (UrbanSound8K 3 a fold,
    AudioMNIST 2 speakers x 10 digits) and trained on the rest; the row averages the folds."""
    data = make(tmp_path / dataset)
    root = tmp_path / "bench"
    collected = table.run_benchmark(root, [dataset], ["frami"], budget="tiny", folds={dataset: chosen},
                                    data_roots={dataset: str(data)}, progress=False)
    assert list(collected) == [f"{dataset} (cross-validation)"], "its own row, beside the quick protocol's"
    out = collected[f"{dataset} (cross-validation)"]
    assert out["dataset"] == dataset
    total = len(load_dataset(dataset, data, progress=False))
    for fold in chosen:
        metrics = json.loads(grid.cell_layout(root, grid.Cell(dataset, fold, 0, "frami")).teacher_metrics.read_text())
        assert (metrics["n_test"], metrics["n_train"]) == (heldout, total - heldout)
    assert [f["fold"] for f in out["folds"]] == chosen
    accuracies = [f["methods"]["frami"]["accuracy"] for f in out["folds"]]
    assert out["methods"]["frami"]["accuracy"] == pytest.approx(sum(accuracies) / 2)

    def fold_mean(per_fold):
        return pytest.approx({c: (per_fold[0][c] + per_fold[1][c]) / 2 for c in per_fold[0]})

    assert out["per_class"]["teacher"] == fold_mean([f["per_class"]["teacher"] for f in out["folds"]])
    assert out["methods"]["frami"]["per_class"] == fold_mean([f["methods"]["frami"]["per_class"] for f in out["folds"]])
    curves = [f["methods"]["frami"]["synthesis_curve"] for f in out["folds"]]
    assert out["methods"]["frami"]["synthesis_curve"][-1] == pytest.approx(
        [(curves[0][-1][j] + curves[1][-1][j]) / 2 for j in (0, 1)])
    report.publish(collected, tmp_path / "figures")  # a table with only this row still draws its classes
    assert (tmp_path / "figures" / "per_class_accuracy.png").is_file()
    stamped = results.stamp(collected, root, budget="tiny", seeds=0, folds={dataset: chosen})
    assert stamped[f"{dataset} (cross-validation)"]["run"]["protocol"] == f"folds {chosen[0]}, {chosen[1]} of {len(grid.FOLDS[dataset])}"


def _untimed(value):
    """Metrics without wall-clock times (durations, when a stage finished) and run folders, which differ between
    any two runs."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items()
                if "seconds" not in k
                and k not in ("samples_per_second", "ms_per_step", "pool_dir", "inversion_dir", "finished")}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _stage_metrics(root):
    layout = Layout.chain(root)
    paths = [layout.teacher_metrics, layout.student_real_metrics, layout.inversion_metrics, layout.distill_metrics,
             layout.kd_real_metrics, *sorted((layout.teacher / "judges").glob("*/judge_metrics.json"))]
    return {p.relative_to(root): _untimed(json.loads(p.read_text())) for p in paths}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    return root, run_pipeline(KILLED, root, progress=False)


@pytest.mark.parametrize("stage", ["teacher", "inversion", "distillation"])
def test_a_chain_killed_inside_a_stage_resumes_to_the_same_numbers_and_weights(stage, uninterrupted, tmp_path):
    """A real SIGKILL in the stage's second epoch or round; the resumed chain matches an uninterrupted one in
    every metric (times aside) and in the final student's weights, bit for bit."""
    reference, summary = uninterrupted
    KILLED.save(tmp_path / "spec.json")
    root = tmp_path / "run"
    killed = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path / "spec.json"), str(root), stage],
                            capture_output=True, text=True, timeout=900)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    layout = Layout.chain(root)
    unfinished = {"teacher": layout.teacher_metrics, "inversion": layout.inversion_metrics,
                  "distillation": layout.distill_metrics}[stage]
    assert not unfinished.exists(), f"killed inside the {stage} stage, before it finished"
    assert run_pipeline(KILLED, root, progress=False) == summary
    assert _stage_metrics(root) == _stage_metrics(reference)
    weights = [torch.load(r / "distillation" / "student.pt", weights_only=True)["model_state"] for r in (root, reference)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
