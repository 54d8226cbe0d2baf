"""Distillation: KD and hidden-state reuse losses, the alternating stage, references, and bad input."""
from __future__ import annotations

import json

import pytest
import torch

from framilab.augment import student_augment
from framilab.checkpoint import RunExistsError, load_trained
from framilab.data import load_dataset
from framilab.distillation import distill_on_real, run_distillation
from framilab.inversion import run_inversion
from framilab.kd import DistillLoss, HiddenStateReuse, distillation_loss, kd_loss
from framilab.models import build_model
from framilab.provenance import code_version
from framilab.synthesis import Pool, PoolError
from framilab.train import TrainConfig, train_classifier


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """A small teacher, a two-round inversion pool, and the real splits it came from."""
    train = load_dataset("synthetic", split="train", n_per_class=30, progress=False)
    test = load_dataset("synthetic", split="test", n_per_class=5, progress=False)
    root = tmp_path_factory.mktemp("stage")
    train_classifier("tdnn-student", train, test, root / "teacher", TrainConfig(epochs=12, batch_size=32, crop_frames=80), progress=False)
    teacher = root / "teacher" / "teacher.pt"
    run_inversion(teacher, root / "inversion", "frami", rounds=2, batch_size=20, student="tdnn-student",
                  student_steps=1, steps=2, progress=False)
    return teacher, root / "inversion", train, test


def test_student_augmentation_crops_to_80_percent_and_masks():
    x = torch.ones(6, 40, 100)
    out = student_augment(x, torch.Generator().manual_seed(0))
    assert out.shape == (6, 40, 80)
    masked = (out == 0).float().mean().item()
    assert 0 < masked < 0.5, masked
    torch.testing.assert_close(out, student_augment(x, torch.Generator().manual_seed(0)))


def test_kd_loss_is_zero_for_identical_logits_and_positive_otherwise():
    logits = torch.randn(8, 5)
    assert kd_loss(logits, logits).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(torch.randn(8, 5), logits).item() > 0


@pytest.mark.parametrize("student_preset,teacher_preset", [("resnet-student", "tdnn-teacher"),
                                                           ("tdnn-student", "resnet-teacher")])
def test_reuse_works_across_families_widths_and_frame_rates(student_preset, teacher_preset):
    student = build_model(student_preset, 40, 10)
    teacher = build_model(teacher_preset, 40, 10).eval()
    reuse = HiddenStateReuse(student, teacher)
    x = torch.randn(4, 40, 90)
    s_out, t_out = student(x), teacher(x)
    assert s_out[1].shape[-1] != t_out[1].shape[-1], "the two families have different frame counts"
    total, terms = distillation_loss(s_out, t_out, DistillLoss(), reuse)
    assert set(terms) == {"kd", "reuse_pre", "reuse_post"}
    total.backward()
    assert reuse.pre.weight.grad.abs().sum() > 0 and reuse.post.weight.grad.abs().sum() > 0
    _, only_kd = distillation_loss(s_out, t_out, DistillLoss(reuse_pre=0, reuse_post=0), None)
    assert set(only_kd) == {"kd"}


def test_reuse_loss_can_be_driven_down():
    torch.manual_seed(0)
    student, teacher = build_model("tdnn-student", 40, 10), build_model("tdnn-teacher", 40, 10).eval()
    reuse = HiddenStateReuse(student, teacher)
    opt = torch.optim.Adam(list(student.parameters()) + list(reuse.parameters()), lr=3e-3)
    x = torch.randn(16, 40, 60)
    with torch.no_grad():
        t_out = teacher(x)
    losses = []
    for _ in range(30):
        total, terms = distillation_loss(student(x), t_out, DistillLoss(kd=0.0), reuse)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(terms["reuse_pre"] + terms["reuse_post"])
    assert losses[-1] < 0.5 * losses[0]


def _files(folder):
    return {p.relative_to(folder): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")}


def test_distillation_stage_writes_a_student_and_resumes(stage, tmp_path):
    teacher, inversion_dir, _, test = stage
    options = dict(student="tdnn-student", steps_per_round=2, batch_size=16, eval_set=test, eval_every=1,
                   steps=1, progress=False)
    inversion_before = _files(inversion_dir)
    out = tmp_path / "distillation"
    seen = []
    metrics = run_distillation(teacher, inversion_dir, out, rounds=2, on_eval=seen.append, **options)
    assert [r["round"] for r in seen] == [1, 2]
    for key in ("student_accuracy", "teacher_accuracy", "synthesis_seconds", "distill_seconds"):
        assert key in metrics
    assert metrics["pool_size"] == 72, "two inversion rounds of 20 + two distillation rounds of 16"
    stored = json.loads((out / "distill_metrics.json").read_text())
    assert stored["rounds"] == 2 and stored["code"] == code_version() and stored["seed"] == 0
    confusion = torch.tensor(stored["confusion"])
    assert confusion.sum(1).tolist() == [test.targets.count(c) for c in range(len(test.classes))], "rows: true class"
    assert confusion.trace() / len(test) == pytest.approx(metrics["student_accuracy"])
    student = load_trained(out / "student.pt")
    assert student.preset == "tdnn-student" and student.classes == test.classes
    with pytest.raises(RunExistsError, match="already holds a distillation run"):
        run_distillation(teacher, inversion_dir, out, rounds=3, **options)
    resumed = run_distillation(teacher, inversion_dir, out, rounds=3, resume=True, **options)
    assert len(resumed["history"]) == 3 and resumed["pool_size"] == 88
    fresh = run_distillation(teacher, inversion_dir, out, rounds=1, overwrite=True, **options)
    assert fresh["pool_size"] == 56, "a fresh run starts from the inversion run's own pool"
    assert _files(inversion_dir) == inversion_before, "the inversion run is only read"
    with pytest.raises(ValueError, match="distillation writes a folder of its own"):
        run_distillation(teacher, inversion_dir, inversion_dir, rounds=1, **options)


def test_an_ablation_given_to_the_inversion_holds_for_distillation_too(stage, tmp_path):
    """`-p w_fic 0` reached notebook 02's inversion only: distillation's new batches went on with fic=0.5."""
    teacher = stage[0]
    inversion_dir, out = tmp_path / "inversion", tmp_path / "distillation"
    run_inversion(teacher, inversion_dir, "frami", rounds=1, batch_size=10, student="tdnn-student", student_steps=1,
                  steps=2, fic=0.0, bn=0.2, progress=False)
    metrics = run_distillation(teacher, inversion_dir, out, student="tdnn-student", rounds=1, steps_per_round=1,
                               batch_size=10, steps=1, progress=False)
    inversion = json.loads((inversion_dir / "inversion_metrics.json").read_text())["config"]
    distillation = json.loads((out / "distill_metrics.json").read_text())["synthesis_config"]
    assert (inversion["fic"], inversion["bn"], inversion["steps"]) == (0.0, 0.2, 2)
    assert (distillation["fic"], distillation["bn"], distillation["steps"]) == (0.0, 0.2, 1)
    assert metrics["synthesis_config"] == distillation
    other = run_distillation(teacher, inversion_dir, out, student="tdnn-student", method="cmi", rounds=1,
                             steps_per_round=1, batch_size=10, steps=1, progress=False, overwrite=True)
    assert other["synthesis_config"]["fic"] == 0.5, "another method keeps its own weights"


def test_kd_on_real_data_reference(stage):
    teacher, _, train, test = stage
    result = distill_on_real(teacher, train, test, student="tdnn-student", epochs=3, batch_size=20, progress=False)
    assert result["epochs"] == 3 and list(result["per_class_accuracy"]) == test.classes
    ticks = result["epoch_seconds"]
    assert len(ticks) == 3 and 0 < ticks[0] < ticks[1] < ticks[2] <= result["seconds"], "one clock, every epoch"
    counts = [test.targets.count(c) for c in range(len(test.classes))]
    right = sum(acc * n for acc, n in zip(result["per_class_accuracy"].values(), counts))
    assert right / len(test) == pytest.approx(result["accuracy"]), "per-class accuracies weighted by support"


def test_pool_from_another_teacher_is_refused(stage, tmp_path):
    _, inversion_dir, train, test = stage
    train_classifier("tdnn-student", train, test, tmp_path, TrainConfig(epochs=1, seed=5), progress=False)
    with pytest.raises(PoolError, match="holds samples from teacher"):
        run_distillation(tmp_path / "teacher.pt", inversion_dir, tmp_path / "out", rounds=1, progress=False)


def test_a_missing_or_empty_pool_is_refused(stage, tmp_path):
    teacher, *_ = stage
    with pytest.raises(PoolError, match="holds no pool"):
        run_distillation(teacher, tmp_path / "inversion", tmp_path / "out", rounds=1, progress=False)
    Pool(tmp_path / "inversion" / "pool", {"teacher_fingerprint": load_trained(teacher).fingerprint()})
    with pytest.raises(PoolError, match="is empty and synthesize=False"):
        run_distillation(teacher, tmp_path / "inversion", tmp_path / "out", rounds=1, synthesize=False,
                         progress=False)


def test_eval_set_with_other_classes_is_refused(stage, tmp_path):
    teacher, inversion_dir, *_ = stage
    from fixtures import make_fsdd

    fsdd = load_dataset("fsdd", make_fsdd(tmp_path / "fsdd", speakers=("amy",), takes=range(0, 2)), split="test",
                        progress=False)
    with pytest.raises(ValueError, match="evaluation set's classes .* do not match the teacher's"):
        run_distillation(teacher, inversion_dir, tmp_path / "out", rounds=1, eval_set=fsdd, progress=False)


def test_unknown_student_preset(stage, tmp_path):
    teacher, inversion_dir, *_ = stage
    with pytest.raises(ValueError, match="unknown model preset 'tiny-student'"):
        run_distillation(teacher, inversion_dir, tmp_path, student="tiny-student", rounds=1, progress=False)
