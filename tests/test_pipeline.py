"""The pipeline as a library object: one spec, one layout, stages that resume and refuse another spec's folder,
and the benchmark grid on a local Ray."""
from __future__ import annotations

import json

import pytest

from framilab.benchmarks import grid, results, table
from framilab.layout import Layout
from framilab.pipeline import SpecMismatchError, continue_spec, run_pipeline, spec_in
from framilab.spec import RunSpec

TINY = grid.BUDGETS["tiny"]["synthetic"]


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


def test_another_spec_in_a_finished_folder_is_refused_by_name(chain):
    spec, root, _ = chain
    with pytest.raises(SpecMismatchError, match=r"holds a inversion-stage run of another spec \(it differs in "
                                                r"\['inversion.rounds', 'inversion.synth.fic'\]\)"):
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
    assert out["synthetic"]["kd_real"] is not None
    before = _mtimes(root / "synthetic")
    again = table.run_benchmark(root, ["synthetic"], ["cmi", "frami"], budget="tiny", seeds=[0, 1], progress=False)
    assert again == results.collect(root, ["synthetic"], ["cmi", "frami"], seeds=[0, 1])
    assert _mtimes(root / "synthetic") == before, "finished cells are never run twice"
