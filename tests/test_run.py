"""The papermill run layer: parameters papermill sees, unknown names and values refused."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat
import papermill
import pytest

import framilab
from framilab.benchmarks import estimate, grid, report, results, table, views
from framilab.provenance import code_version, describe
from framilab.run import (DEMO_VIEWS, FULL_SIZE, NOTEBOOKS, STAGES, check_parameters, main, notebook_path,
                          notebook_parameters, run_stage, split_parameters, valid_parameters)
from framilab.spec import RunSpec
from framilab.synthesis import METHODS
from framilab.synthesis.synthesizer import GENERATORS

TINY_TEACHER = {"epochs": 2, "n_per_class": 4, "figures_dir": None, "batch_size": 16, "student_epochs": 1}


def test_teacher_notebook_declares_the_documented_parameters():
    names = set(valid_parameters("teacher"))
    assert {"dataset", "data_root", "model", "epochs", "batch_size", "lr", "seed", "run_dir"} <= names


@pytest.mark.parametrize("stage", list(NOTEBOOKS))
def test_papermill_sees_every_parameter_the_cell_assigns(stage):
    """papermill silently drops lines it cannot parse (an '=' inside a comment is enough)."""
    notebook = nbformat.read(notebook_path(stage), as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [line.split("=")[0].split(":")[0].strip() for line in cell.source.splitlines() if "=" in line]
    assert sorted(assigned) == sorted(valid_parameters(stage))


@pytest.mark.parametrize("stage", list(NOTEBOOKS))
def test_committed_notebooks_hold_no_outputs(stage):
    """Committed notebooks are sources: outputs belong to executed copies under runs/, so diffs stay readable."""
    notebook = nbformat.read(notebook_path(stage), as_version=4)
    assert [c.get("outputs", []) for c in notebook.cells if c.cell_type == "code"] == \
        [[] for c in notebook.cells if c.cell_type == "code"]


def test_full_size_and_benchmark_budgets_name_only_real_parameters():
    """The demo's budgets are notebook parameters; every benchmark cell's is a valid run spec."""
    for dataset, sections in FULL_SIZE.items():
        for stage, params in notebook_parameters(sections).items():
            check_parameters(stage, {**params, **DEMO_VIEWS.get(stage, {})})
    for budget in grid.BUDGETS:
        for dataset in grid.BUDGETS[budget]:
            for method in grid.METHODS:
                spec = grid.cell_spec(grid.Cell(dataset, None, 1, method), budget, teacher_seed=0)
                assert (spec.data.name, spec.seed, spec.teacher_seed) == (dataset, 1, 0)
                assert spec.inversion.method == grid.SETTINGS[method][1].get("inversion", {}).get(
                    "method", grid.SETTINGS[method][0])
                assert bool(spec.distillation.kd_real_epochs) == (method == grid.KD_REAL_CELL)
    check_parameters("benchmark", table.FULL_RUN)
    for budget, steps, batches in (("full", 2000, 2), ("tiny", 200, 1)):
        race = grid.cell_spec(grid.Cell("esc10", None, 0, "deepinversion_2k"), budget, teacher_seed=0)
        assert (race.inversion.method, race.inversion.steps_per_round, race.inversion.rounds, race.inversion.warmup,
                race.distillation.synthesize) == ("deepinversion", steps, batches, 0, False)
    layouts = [grid.cell_layout(Path("runs"), grid.Cell("esc10", None, 0, m)) for m in ("deepinversion", "deepinversion_2k")]
    assert layouts[0].inversion != layouts[1].inversion, "DeepInversion at two budgets: two inversions"
    with pytest.raises(ValueError, match="unknown budget 'huge'; choose one of"):
        grid.cell_spec(grid.Cell("synthetic", None, 0, "frami"), "huge", 0)


def test_studies_name_only_real_synthesis_settings_and_need_a_real_teacher(tmp_path, capsys):
    for method, overrides in views.VIEWS.values():
        assert METHODS[method].replace(**overrides).views in ("time_crop", "resized_crop", None)
    generators = {(METHODS[m].replace(**o).generator, METHODS[m].fic > 0) for m, o in views.GENERATORS.values()}
    assert generators == {(g, fic) for g in GENERATORS for fic in (False, True)}
    conditioning = {(METHODS[m].replace(**o).class_input, METHODS[m].fic > 0) for m, o in views.CONDITIONING.values()}
    assert conditioning == {(c, fic) for c in ("scale", "shift") for fic in (False, True)}
    with pytest.raises(SystemExit):
        views.main(["--study", "generators", "--variants", "4d"])
    assert "study 'generators' has no variant(s) ['4d']; its variants: ['1d', '1d + fic'" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no teacher checkpoint at .*missing.pt"):
        views.teacher_for("synthetic", tmp_path / "missing.pt", tmp_path, "cpu")
    with pytest.raises(SystemExit):
        views.main(["--validation", "held-out", "--datasets", "synthetic", "--teachers", str(tmp_path / "t.pt")])
    assert "trains its own teacher and judges without them: leave --teachers out" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        views.main(["--held-out-groups", "fifth0", "--datasets", "synthetic"])
    assert "add --validation held-out" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        views.main(["--validation", "held-out", "--held-out-groups", "fold1", "--datasets", "synthetic",
                    "--out", str(tmp_path)])
    assert ("synthetic has no held-out group(s) ['fold1']; its groups: ['fifth0', 'fifth1', 'fifth2', 'fifth3', "
            "'fifth4'] (or 'all')") in capsys.readouterr().err


def test_a_study_over_several_held_out_groups_pools_their_clips():
    rows = {"fold1": {"teacher_accuracy_on_pool": 1.0, "transfer_accuracy": 0.4, "diversity": 0.2,
                      "validation_accuracy": 0.9, "minutes": 10.0, "curve": [(4, 0.5), (8, 0.9)]},
            "fold2": {"teacher_accuracy_on_pool": 0.8, "transfer_accuracy": 0.6, "diversity": 0.4,
                      "validation_accuracy": 0.5, "minutes": 12.0, "curve": [(4, 0.3), (8, 0.5)]}}
    row = views.pooled(rows, {"fold1": 80, "fold2": 20})
    assert row["validation_accuracy"] == pytest.approx(0.82), "72 + 10 of 100 clips right"
    assert row["curve"] == [(4, pytest.approx(0.46)), (8, pytest.approx(0.82))]
    assert (row["transfer_accuracy"], row["minutes"], row["groups"]) == (pytest.approx(0.5), 22.0, rows)
    assert views.pooled({"fold1": rows["fold1"]}, {"fold1": 80}) is rows["fold1"]


def test_benchmark_reuses_a_finished_teacher_run_of_the_same_data_set_only(tmp_path):
    """A reused teacher run brings its spec, which the data set's cells then follow (its epochs, its seed)."""
    source = tmp_path / "notebook" / "teacher"
    assert table._reuse_teacher(source, tmp_path / "cell" / "teacher", "synthetic") is None
    source.mkdir(parents=True)
    (source / "teacher_metrics.json").write_text('{"dataset": "fsdd", "test_accuracy": 0.9}')
    (source / "teacher.pt").write_bytes(b"weights")
    with pytest.raises(ValueError, match="trained on 'fsdd', not 'synthetic'"):
        table._reuse_teacher(source, tmp_path / "cell" / "teacher", "synthetic")
    with pytest.raises(ValueError, match="without the spec that made it"):
        table._reuse_teacher(source, tmp_path / "cell" / "teacher", "fsdd")
    RunSpec.from_dict({"data": {"name": "fsdd"}, "teacher": {"epochs": 3}, "seed": 4}).save(source / "spec.json")
    reused = table._reuse_teacher(source, tmp_path / "cell" / "teacher", "fsdd")
    assert (tmp_path / "cell" / "teacher" / "teacher.pt").read_bytes() == b"weights"
    spec = grid.cell_spec(grid.Cell("fsdd", None, 1, "cmi"), "full", teacher_seed=0, teacher=reused)
    assert (spec.teacher.epochs, spec.teacher_seed, spec.seed) == (3, 4, 1)


def test_unknown_parameter_names_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"has no parameter\(s\) \['epoch'\]; valid names: \[.*'epochs'"):
        check_parameters("teacher", {"epoch": 3})
    with pytest.raises(ValueError, match="unknown stage 'teach'"):
        check_parameters("teach", {})


def test_cli_refuses_unknown_parameters(capsys):
    with pytest.raises(SystemExit):
        main(["-p", "learning_rate", "0.1"])
    assert "unknown parameter(s) ['learning_rate']; valid names" in capsys.readouterr().err


def test_cli_parameters_go_to_their_stage_and_shared_ones_to_every_stage():
    common, per_stage = split_parameters([("seed", 2), ("w_fic", 0.0), ("distillation.rounds", 10),
                                          ("inversion.rounds", 6), ("epochs", 3)], list(STAGES))
    assert common == {"seed": 2, "w_fic": 0.0, "epochs": 3}
    assert per_stage == {"teacher": {}, "inversion": {"rounds": 6}, "distillation": {"rounds": 10}}
    assert split_parameters([("rounds", 4)], ["teacher", "distillation"]) == ({"rounds": 4},
                                                                                {"teacher": {}, "distillation": {}})


def test_unknown_values_fail_with_the_choices(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="unknown data set 'urbansound'"):
        run_stage("teacher", {**TINY_TEACHER, "dataset": "urbansound", "run_dir": str(tmp_path / "a")},
                  tmp_path / "a.ipynb", progress=False)
    with pytest.raises(papermill.PapermillExecutionError, match="unknown model preset 'resnet-giant'"):
        run_stage("teacher", {**TINY_TEACHER, "model": "resnet-giant", "run_dir": str(tmp_path / "b")},
                  tmp_path / "b.ipynb", progress=False)


def test_benchmark_refuses_unknown_methods(tmp_path):
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['frami_plus'\]; choose from \['deepinversion'"):
        table.run_benchmark(tmp_path, ["synthetic"], ["frami", "frami_plus"], budget="tiny", progress=False)


def _row(accuracy: float) -> dict:
    method = {"accuracy": accuracy, "cpu_minutes": 2.0, "synthesis_minutes": 1.5, "distill_minutes": 0.5,
              "curve": [[1.0, accuracy / 2], [2.0, accuracy]]}
    return {"teacher": 0.9, "student_real": 0.85, "kd_real": 0.8, "methods": {"frami": method}}


def test_the_speed_race_reads_the_synthesis_minutes_at_which_frami_first_reaches_deepinversion_2k():
    row = _row(0.8)
    row["methods"]["frami"]["synthesis_curve"] = [[3.0, 0.5], [4.0, 0.72], [5.0, 0.8]]
    row["methods"]["deepinversion_2k"] = {**_row(0.7)["methods"]["frami"], "synthesis_minutes": 40.0}
    race = results.speed_race(row)
    assert (race["fast_minutes"], race["times_less"], race["lower_bound"], race["by"]) == (4.0, 10.0, False, "frami")
    assert "FRAMI's (`frami`) reaches it after 4.0 min, 10.0x less synthesis time." in \
        report.results_markdown({"esc10": row})
    row["methods"]["deepinversion_2k"]["accuracy"] = 0.4
    assert results.speed_race(row)["lower_bound"] and "at least 13.3x less" in report.results_markdown({"esc10": row})
    # FRAMI with a short inversion stage is evaluated sooner: the race takes whichever curve gets there first.
    row["methods"]["frami_short"] = {**_row(0.75)["methods"]["frami"],
                                     "synthesis_curve": [[0.5, 0.3], [1.0, 0.6], [2.0, 0.75]]}
    race = results.speed_race(row)
    assert (race["fast_minutes"], race["times_less"], race["lower_bound"], race["by"]) == (1.0, 40.0, False,
                                                                                         "frami_short")
    row["methods"]["deepinversion_2k"]["accuracy"] = 0.78
    assert (results.speed_race(row)["fast_minutes"], results.speed_race(row)["by"]) == (5.0, "frami")
    del row["methods"]["frami_short"]
    row["methods"]["deepinversion_2k"]["accuracy"] = 0.9
    assert results.speed_race(row)["times_less"] is None
    assert "FRAMI's stays below it (best 0.8000)." in report.results_markdown({"esc10": row})
    del row["methods"]["deepinversion_2k"]
    assert results.speed_race(row) is None and "Speed race" not in report.results_markdown({"esc10": row})
    fig = report.accuracy_vs_time({"esc10": row, "fsdd": _row(0.9)})
    (_, _), (race_panel, empty_panel) = fig.axes[0:2], fig.axes[2:4]
    assert race_panel.axison and race_panel.get_xscale() == "log" and race_panel.get_lines()
    assert not empty_panel.axison and "did not record" in empty_panel.texts[0].get_text(), \
        "a row without synthesis curves says why instead of an empty race panel"


def test_a_run_of_one_data_set_replaces_its_row_and_keeps_the_others(tmp_path):
    """The table takes hours, so data sets are rerun one at a time: each row says which run it is."""
    figures = tmp_path / "figures"
    report.publish({"esc10": _row(0.5), "synthetic": _row(0.6)}, figures)
    with open(figures / "results.md", "a") as notes:
        notes.write("## A study written by hand\n\nIt stays.\n")
    cell = tmp_path / "runs" / "esc10" / "seed3" / "frami" / "distillation"
    cell.mkdir(parents=True)
    (cell / "distill_metrics.json").write_text(json.dumps({"code": "framilab 0.1.0, commit 1a2b3c4"}))
    os.utime(cell / "distill_metrics.json", (1_800_000_000, 1_800_000_000))
    fresh = results.stamp({"esc10": _row(0.7)}, tmp_path / "runs", budget="full", seeds=3)
    written = report.publish(fresh, figures, "header")
    assert list(written) == ["synthetic", "esc10"], "rows in the data sets' order"
    assert written["synthetic"]["methods"]["frami"]["accuracy"] == 0.6 and "run" not in written["synthetic"]
    assert written["esc10"]["methods"]["frami"]["accuracy"] == 0.7
    assert written["esc10"]["run"]["finished"] == "2027-01-15 08:00 UTC"
    assert json.loads((figures / "results.json").read_text()) == written
    markdown = (figures / "results.md").read_text()
    assert markdown.startswith("header\n")
    assert "Budget `full`, seed 3, quick protocol; last cell finished 2027-01-15 08:00 UTC; run on " in markdown
    assert "torch threads; torch " in markdown and "; framilab 0.1.0, commit 1a2b3c4." in markdown
    assert "\n## synthetic\n\n| student trained on |" in markdown, "a row stamped by no run says nothing of one"
    assert (figures / "accuracy_vs_time.png").stat().st_size > 5_000
    assert not (figures / "per_class_accuracy.png").exists(), "rows without per-class accuracy draw no heatmap"
    assert markdown.endswith(report.NOTES + "\n## A study written by hand\n\nIt stays.\n"), "hand-written notes are kept"
    assert markdown.count(report.NOTES) == 1


def test_a_cross_validation_is_its_own_row_beside_the_quick_protocols(tmp_path):
    """FSDD's official split and its speaker folds answer different questions: publishing one keeps the other."""
    figures = tmp_path / "figures"
    report.publish({"fsdd": {"dataset": "fsdd", **_row(0.97)}, "esc10": _row(0.8)}, figures)
    assert grid.row_name("fsdd") == "fsdd" and grid.row_name("fsdd", {"fsdd": "all"}) == "fsdd (cross-validation)"
    assert grid.row_name("fsdd", {"esc10": "all"}) == "fsdd"
    written = report.publish({"fsdd (cross-validation)": {"dataset": "fsdd", **_row(0.9)},
                              "synthetic": {"dataset": "synthetic", **_row(0.7)}}, figures)
    assert list(written) == ["synthetic", "fsdd", "fsdd (cross-validation)", "esc10"]
    assert [written[n]["methods"]["frami"]["accuracy"] for n in written] == [0.7, 0.97, 0.9, 0.8]
    assert "\n## fsdd (cross-validation)\n" in (figures / "results.md").read_text()
    assert [report.samples_figure(n) for n in written][1:3] == ["samples_fsdd.png", "samples_fsdd_cross_validation.png"]


def test_a_row_made_across_sessions_says_when_and_on_which_hosts_from_its_cells_metrics(tmp_path):
    """Archived cells come back from git with new file times: the record reads each cell's own time and host."""
    cells = [("host A, AVX2, 2 torch threads", "2027-01-15 08:00 UTC", "framilab 0.1.0, commit 17d4d46"),
             ("host B, AVX512, 2 torch threads", "2027-01-16 09:30 UTC", "framilab 0.1.0, commit 0da9a3a"),
             ("host B, AVX512, 2 torch threads", "2027-01-16 09:00 UTC", "framilab 0.1.0")]
    for seed, (host, finished, code) in enumerate(cells):
        cell = tmp_path / "runs" / "esc10" / (f"seed{seed}" if seed else "") / "frami" / "distillation"
        cell.mkdir(parents=True)
        (cell / "distill_metrics.json").write_text(json.dumps({"code": code, "host": host, "finished": finished}))
        os.utime(cell / "distill_metrics.json", (2_000_000_000, 2_000_000_000))
    run = results.stamp({"esc10": _row(0.7)}, tmp_path / "runs", budget="full", seeds=[0, 1, 2])["esc10"]["run"]
    assert run["finished"] == "2027-01-16 09:30 UTC"
    assert run["machine"] == "host A, AVX2, 2 torch threads; host B, AVX512, 2 torch threads"
    assert run["code"] == "framilab 0.1.0; framilab 0.1.0, commits 0da9a3a, 17d4d46", "each version said once"


def _finished_cell(folder: Path, accuracy: float, kd_real: float | None = None, transfer: float | None = None) -> None:
    """The metrics a finished (data set, seed, method) cell leaves: 1 min of inversion, 2 of synthesis + distillation;
    classes "0" and "1" right at accuracy +- 0.02 (and KD on real data's at kd_real +- 0.01); the pool's transfer
    accuracy where judges measured it."""
    (folder / "inversion").mkdir(parents=True)
    (folder / "distillation").mkdir(parents=True)
    (folder / "inversion" / "inversion_metrics.json").write_text(json.dumps(
        {"seconds": 50.0, "student_seconds": 10.0, **({"transfer_accuracy": transfer} if transfer is not None else {})}))
    history = [{"synthesis_seconds": 30.0, "distill_seconds": 30.0, "student_accuracy": accuracy - 0.1},
               {"synthesis_seconds": 60.0, "distill_seconds": 60.0, "student_accuracy": accuracy}]
    (folder / "distillation" / "distill_metrics.json").write_text(json.dumps(
        {"history": history, "synthesis_seconds": 60.0, "distill_seconds": 60.0, "student_accuracy": accuracy,
         "per_class_accuracy": {"0": accuracy + 0.02, "1": accuracy - 0.02}}))
    if kd_real is not None:
        (folder / "distillation" / "kd_real_metrics.json").write_text(json.dumps(
            {"accuracy": kd_real, "per_class_accuracy": {"0": kd_real + 0.01, "1": kd_real - 0.01}}))


def test_several_seeds_give_each_cell_its_mean_spread_and_seeds_paired_against_frami(tmp_path):
    """Seed 0's cells sit in the data set's folder, seed k's in seed<k>/; a method missing a seed averages the rest."""
    runs = tmp_path / "runs"
    (runs / "fsdd" / "teacher").mkdir(parents=True)
    (runs / "fsdd" / "teacher" / "teacher_metrics.json").write_text(
        json.dumps({"test_accuracy": 0.99, "student_real_accuracy": 0.98, "per_class_accuracy": {"0": 1.0, "1": 0.98}}))
    frami, cmi = {0: 0.96, 1: 0.97, 2: 0.95}, {0: 0.97, 1: 0.97}
    for seed, folder in ((0, runs / "fsdd"), (1, runs / "fsdd" / "seed1"), (2, runs / "fsdd" / "seed2")):
        _finished_cell(folder / "frami", frami[seed], kd_real=0.99 - 0.01 * seed)
        if seed in cmi:
            _finished_cell(folder / "cmi", cmi[seed])
    with pytest.raises(ValueError, match=r"seeds must be one non-negative int or a list of distinct ones.*got \[1, 1\]"):
        results.collect(runs, ["fsdd"], ["cmi", "frami"], seeds=[1, 1])
    row = results.stamp(results.collect(runs, ["fsdd"], ["cmi", "frami"], seeds=[0, 1, 2]), runs, budget="full",
                      seeds=[0, 1, 2])["fsdd"]
    assert row["methods"]["frami"]["accuracy"] == pytest.approx(0.96)
    assert row["methods"]["frami"]["accuracy_sd"] == pytest.approx(0.01)
    assert row["methods"]["frami"]["seeds"] == {"0": 0.96, "1": 0.97, "2": 0.95}
    assert row["methods"]["frami"]["cpu_minutes"] == pytest.approx(3.0)
    assert row["methods"]["frami"]["curve"] == [[2.0, pytest.approx(0.86)], [3.0, pytest.approx(0.96)]]
    assert row["methods"]["cmi"]["seeds"] == {"0": 0.97, "1": 0.97} and row["methods"]["cmi"]["accuracy"] == 0.97
    assert row["kd_real"] == pytest.approx(0.98) and row["kd_real_seeds"] == {"0": 0.99, "1": 0.98, "2": 0.97}
    assert row["run"]["seeds"] == [0, 1, 2] and "seed" not in row["run"]
    assert results.paired_differences(row) == {"cmi": [pytest.approx(-0.01), pytest.approx(0.0)]}
    assert row["methods"]["frami"]["per_class"] == {"0": pytest.approx(0.98), "1": pytest.approx(0.94)}
    assert row["per_class"] == {"teacher": {"0": 1.0, "1": 0.98}, "student_real": None,
                                "kd_real": {"0": pytest.approx(0.99), "1": pytest.approx(0.97)}}
    markdown = report.results_markdown({"fsdd": row})
    assert "| student trained on | 0 | 1 |\n|---|---|---|\n| teacher | 1.00 | 0.98 |\n| KD on real data | 0.99 | 0.97 |\n" \
           "| cmi | 0.99 | 0.95 |\n| frami | 0.98 | 0.94 |\n" in markdown
    assert "seeds 0, 1, 2 on one teacher" in markdown
    assert "| data-free: frami | 0.9600 ± 0.0100 (0.960, 0.970, 0.950) |" in markdown
    assert "| data-free: cmi | **0.9700** ± 0.0000 (0.970, 0.970) |" in markdown
    assert "- cmi: -0.0050 ± 0.0071 over 2 seeds (-0.0100, +0.0000)" in markdown
    report.publish({"fsdd": row}, tmp_path / "figures")
    assert (tmp_path / "figures" / "per_class_accuracy.png").stat().st_size > 5_000
    one_seed = results.collect(runs, ["fsdd"], ["cmi", "frami"], seeds=2)["fsdd"]
    assert one_seed["methods"] == {"frami": one_seed["methods"]["frami"]} and "seeds" not in one_seed["methods"]["frami"]
    assert one_seed["methods"]["frami"]["accuracy"] == 0.95 and one_seed["kd_real"] == 0.97
    assert one_seed["methods"]["frami"]["per_class"] == {"0": 0.97, "1": pytest.approx(0.93)} and "kd_real_per_class" not in \
        one_seed["methods"]["frami"]


def test_the_pools_transfer_accuracy_is_a_column_averaged_over_seeds(tmp_path):
    runs = tmp_path / "runs"
    (runs / "fsdd" / "teacher").mkdir(parents=True)
    (runs / "fsdd" / "teacher" / "teacher_metrics.json").write_text(json.dumps({"test_accuracy": 0.99}))
    for seed, folder in ((0, runs / "fsdd"), (1, runs / "fsdd" / "seed1")):
        _finished_cell(folder / "frami", 0.9, transfer=0.4 + 0.2 * seed)
        _finished_cell(folder / "cmi", 0.8)
    row = results.collect(runs, ["fsdd"], ["cmi", "frami"], seeds=[0, 1])["fsdd"]
    assert row["methods"]["frami"]["transfer"] == pytest.approx(0.5) and "transfer" not in row["methods"]["cmi"]
    markdown = report.results_markdown({"fsdd": row})
    assert "| x KD on real data | pool's transfer accuracy |\n|---|---|---|---|---|" in markdown
    assert "| data-free: frami | **0.9000** ± 0.0000 (0.900, 0.900) | 3.00 (1.83 + 1.17) |  | 0.500 |" in markdown
    assert "| data-free: cmi | 0.8000 ± 0.0000 (0.800, 0.800) | 3.00 (1.83 + 1.17) |  | |" in markdown
    assert "| teacher (real data) | 0.9900 | |  | |" in markdown
    assert "pool's transfer accuracy" not in report.results_markdown(
        {"fsdd": results.collect(runs, ["fsdd"], ["cmi"], seeds=[0, 1])["fsdd"]})


def test_folds_name_each_data_sets_official_cross_validation_and_refuse_others():
    assert grid.folds("fsdd") == grid.folds("esc10", "quick") == grid.folds("synthetic", "all") == [None]
    assert grid.folds("fsdd", "all") == ["george", "jackson", "nicolas", "theo", "yweweler"]
    assert grid.folds("esc50", "all") == grid.folds("audiomnist", "all") == [1, 2, 3, 4, 5]
    assert grid.folds("urbansound8k", "all") == list(range(1, 11))
    assert grid.folds("urbansound8k", {"urbansound8k": [3, 4]}) == [3, 4] and grid.folds("esc50", {"fsdd": "all"}) == [None]
    assert grid.protocol("urbansound8k", grid.folds("urbansound8k", "all")) == "all 10 folds"
    assert grid.protocol("urbansound8k", [3, 4]) == "folds 3, 4 of 10" and grid.protocol("esc10", [None]) == "quick"
    assert grid.protocol("fsdd", grid.folds("fsdd", "all")) == "leave one speaker out (5 speakers)"
    for bad in ({"esc50": [6]}, {"esc50": [1, 1]}, {"synthetic": [1]}, "five"):
        with pytest.raises(ValueError, match="must be 'quick', 'all' or a list of distinct folds"):
            grid.folds("synthetic" if "synthetic" in bad else "esc50", bad)
    assert grid.cell_folder(Path("runs"), "fsdd", "theo") == Path("runs/fsdd_foldtheo")


def test_kd_on_real_data_comes_whole_from_one_cell_per_seed(tmp_path):
    """Should two cells of one seed both record KD on real data, its accuracy and its per-class accuracy
    come from the same cell (the first in method order), not from different ones."""
    runs = tmp_path / "runs"
    (runs / "fsdd" / "teacher").mkdir(parents=True)
    (runs / "fsdd" / "teacher" / "teacher_metrics.json").write_text(json.dumps({"test_accuracy": 0.99}))
    _finished_cell(runs / "fsdd" / "cmi", 0.9, kd_real=0.9)
    _finished_cell(runs / "fsdd" / "frami", 0.9, kd_real=0.5)
    row = results.collect(runs, ["fsdd"], ["cmi", "frami"])["fsdd"]
    assert row["kd_real"] == 0.9
    assert row["per_class"]["kd_real"] == {"0": pytest.approx(0.91), "1": pytest.approx(0.89)}


def test_results_record_the_commit_of_the_code_that_made_them():
    root = Path(framilab.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        pytest.skip(f"{root} is not a git checkout: results record framilab's version alone")
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert code_version().startswith(f"framilab {framilab.__version__}, commit {head}")


def test_only_a_change_to_the_code_marks_a_result_as_made_by_uncommitted_code(tmp_path):
    """A result made while a figure or a note was being edited was still made by the committed code."""
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for path in ("framilab/pipeline.py", "figures/results.md"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("one\n")
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "start"]):
        subprocess.run(git + command, check=True)
    clean = f"framilab {framilab.__version__}, commit "
    (tmp_path / "figures/results.md").write_text("two\n")
    assert describe(tmp_path).startswith(clean) and not describe(tmp_path).endswith("uncommitted changes")
    (tmp_path / "framilab/pipeline.py").write_text("two\n")
    assert describe(tmp_path).endswith(" with uncommitted changes")


@pytest.mark.parametrize("argv,error", [
    (["-p", "epochs", "abc"], "stage 'teacher' parameter epochs: expected an integer like its default 6, got 'abc' (str)"),
    (["-p", "epochs", "-1"], "stage 'teacher' parameter epochs: -1 is negative; it counts or weighs something"),
    (["-p", "teacher.lr", "fast"], "stage 'teacher' parameter lr: expected a number like its default 0.003, got 'fast' "
                                   "(str)"),
    (["-p", "rounds", "3"], "parameter 'rounds' means something different in stages ['inversion', 'distillation']: "
                            "give inversion.rounds or distillation.rounds (or several of them)"),
    (["-p", "inversion.epochs", "3"], "stage 'inversion' has no parameter 'epochs'; valid names: "),
    (["-p", "judge.epochs", "3"], "parameter 'judge.epochs': 'judge' is not a stage of this run"),
    (["-p", "overwrite", "1"], "stage 'teacher' parameter overwrite: expected true or false like its default False"),
    (["--dataset", "fsdd", "--data-root", "/no/such/folder"], "fsdd root '/no/such/folder' does not exist or is not a "
                                                              "folder. Give its folder with --data-root."),
])
def test_cli_refuses_bad_values_in_one_line_before_any_work(argv, error, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--classroom", "--name", str(tmp_path / "run"), *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m framilab.run: error: {error}")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists(), "refused before any stage ran"


def test_a_parameter_annotated_with_several_kinds_takes_each_and_refuses_others(tmp_path, capsys):
    """Notebook 04's `folds` is a text ("quick", "all") or a mapping per data set ({"fsdd": "all"}), as its comment
    says; the table's command line must let the mapping through and still refuse a number, before any work."""
    check_parameters("benchmark", {"folds": {"fsdd": "all"}})
    check_parameters("benchmark", {"folds": "all"})
    with pytest.raises(SystemExit) as exit_:
        table.main(["-p", "folds", "3", "-p", "root", str(tmp_path / "bench")])
    assert exit_.value.code == 2
    assert ("parameter folds: expected a text or a mapping like its default 'quick', got 3 (int)"
            in capsys.readouterr().err)
    assert not (tmp_path / "bench").exists()


def test_cli_reports_a_failing_stage_in_one_line_with_the_notebook_to_read(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--classroom", "--name", str(tmp_path / "run"), "--stages", "teacher", "--quiet", "-p", "model",
              "resnet-giant"])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err.count("\n") == 1, err
    assert err.startswith("python -m framilab.run: error: stage 'teacher' failed with ValueError: unknown model preset "
                          "'resnet-giant'")
    assert f"{tmp_path / 'run' / '01_teacher.ipynb'})" in err


def test_the_estimate_probes_every_stage_and_scales_a_grid_by_folds_methods_and_seeds():
    seconds = estimate.estimate_cell("fsdd", "tiny")
    assert set(seconds) == {"teacher", "student_real", "judge tdnn-teacher-seed1", "judge resnet-teacher-seed2",
                            "inversion", "distillation", "kd_real"}
    assert all(value > 0 for value in seconds.values())
    hour = {"teacher": 3600.0, "judge x": 3600.0, "inversion": 3600.0, "distillation": 3600.0, "kd_real": 3600.0}
    # Per fold: teacher and judge once, 5 inversions (frami_no_reuse distils from frami's), deepinversion_2k's
    # (UrbanSound8K's paper budget: 7 batches of 4,000 steps against FRAMI's 40 of 20: 35 of one) and
    # frami_short's (2 rounds of 40: 0.05), 8 distillations, KD on real data once a seed.
    per_fold = 2 + 5 + 35 + 0.05 + 8 + 1
    assert estimate.grid_hours("urbansound8k", hour) == pytest.approx({"folds": 10, "hours_per_fold": per_fold,
                                                                       "hours": 10 * per_fold})
    assert estimate.grid_hours("esc50", hour, seeds=2, folds=1)["hours"] == pytest.approx(2 + 2 * (per_fold - 2))
    assert estimate.grid_hours("esc50", hour, methods=["frami"], folds=1)["hours"] == 2 + 1 + 1 + 1
