"""Judges: independent classifiers beside the teacher, and the transfer accuracy they give a pool."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from framilab.checkpoint import load_checkpoint, load_teacher, save_checkpoint
from framilab.data import load_dataset
from framilab.features import Normalizer
from framilab.inversion import _renormalize, judge_metrics, run_inversion
from framilab.judges import JudgeError, judges_dir, load_judges, train_judges
from framilab.plots import real_vs_synthetic
from framilab.train import TrainConfig, train_classifier


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory):
    """A tdnn-student teacher on 30 synthetic clips per class, and two tdnn-student judges beside it."""
    train = load_dataset("synthetic", split="train", n_per_class=30, progress=False)
    test = load_dataset("synthetic", split="test", n_per_class=5, progress=False)
    run = tmp_path_factory.mktemp("teacher")
    config = TrainConfig(epochs=12, batch_size=32, crop_frames=80, seed=0)
    train_classifier("tdnn-student", train, test, run, config, progress=False)
    train_judges(train, test, run / "teacher.pt", config, ["tdnn-student", "tdnn-student"], progress=False)
    return run / "teacher.pt"


def test_judges_are_found_beside_the_teacher_each_from_its_own_seed(teacher_path):
    teacher = load_teacher(teacher_path)
    judges = load_judges(teacher)
    assert list(judges) == ["tdnn-student-seed1", "tdnn-student-seed2"]
    assert [j.metrics["train_config"]["seed"] for j in judges.values()] == [1, 2]
    assert len({teacher.fingerprint(), *(j.fingerprint() for j in judges.values())}) == 3


def test_transfer_accuracy_on_real_clips_is_each_judges_test_accuracy(teacher_path):
    teacher, test = load_teacher(teacher_path), load_dataset("synthetic", split="test", n_per_class=5, progress=False)
    judges = load_judges(teacher)
    x, y = test.tensors()
    measured = judge_metrics(teacher, judges, teacher.normalizer(x), y, real=teacher.normalizer(x))
    for name, judge in judges.items():
        assert measured["transfer"][name]["accuracy"] == pytest.approx(judge.metrics["test_accuracy"], abs=1e-6)
        assert measured["transfer"][name]["frechet_distance"] == pytest.approx(0.0, abs=1e-3)
        assert measured["transfer"][name]["coverage"] == 1.0
    accuracies = [judge.metrics["test_accuracy"] for judge in judges.values()]
    assert measured["transfer_accuracy"] == pytest.approx(sum(accuracies) / 2, abs=1e-6)
    assert 0.3 < measured["transfer_accuracy"] < 1.0, "12 epochs on 30 clips per class: well above chance (0.1)"


def test_samples_reach_a_judge_in_its_own_normalised_units(teacher_path):
    teacher = load_teacher(teacher_path)
    judge = next(iter(load_judges(teacher).values()))
    other = dataclasses.replace(judge, normalizer=Normalizer(judge.normalizer.mean + 3.0, judge.normalizer.std * 2.0))
    raw = torch.randn(4, teacher.feature_config.n_mels, 50) * 10 - 40
    assert torch.allclose(_renormalize(teacher.normalizer(raw), teacher, other), other.normalizer(raw), atol=1e-4)


def test_a_judge_of_other_classes_is_refused(teacher_path, tmp_path):
    copy = tmp_path / "teacher.pt"
    copy.write_bytes(teacher_path.read_bytes())
    payload = load_checkpoint(next(judges_dir(teacher_path).glob("*/judge.pt")))
    payload["classes"] = payload["classes"][::-1]
    save_checkpoint(payload, judges_dir(copy) / "swapped" / "judge.pt")
    with pytest.raises(JudgeError, match="other classes"):
        load_judges(load_teacher(copy))


def test_inversion_reports_transfer_every_round_and_at_the_end(teacher_path, tmp_path):
    metrics = run_inversion(teacher_path, tmp_path, "frami", rounds=2, batch_size=10, student="tdnn-student",
                            student_steps=1, steps=2, progress=False)
    assert set(metrics["transfer"]) == {"tdnn-student-seed1", "tdnn-student-seed2"}
    assert 0.0 <= metrics["transfer_accuracy"] <= 1.0
    assert all("transfer_accuracy" in record for record in metrics["history"])
    alone = run_inversion(teacher_path, tmp_path / "alone", "frami", rounds=1, batch_size=10,
                          student="tdnn-student", student_steps=1, steps=2, progress=False, use_judges=False)
    assert "transfer_accuracy" not in alone


def test_real_and_synthetic_share_one_db_scale_with_hz_and_seconds(teacher_path):
    teacher, test = load_teacher(teacher_path), load_dataset("synthetic", split="test", n_per_class=5, progress=False)
    x, y = test.tensors()
    fake = (x[:20] - 10.0, y[:20])
    fig = real_vs_synthetic(teacher.feature_config, teacher.classes, (x, y), {"a pool": fake}, per_class=2)
    panels = [ax for ax in fig.axes if ax.images or ax.collections]
    spectrogram_panels = [ax for ax in panels if ax.get_label() != "<colorbar>"]
    assert len(spectrogram_panels) == 10 * 2 + 10 * 2 - sum(2 - min(2, int((y[:20] == c).sum())) for c in range(10))
    limits = {ax.collections[0].get_clim() for ax in spectrogram_panels}
    assert limits == {(float(x.max()) - teacher.feature_config.top_db, float(x.max()))}, "one colour scale"
    assert [ax.get_title(loc="left") for ax in fig.axes[:4]] == ["real", "", "a pool", ""]
    assert fig.axes[0].get_ylabel() == f"{teacher.classes[0]}\nHz" and fig.axes[-2].get_xlabel() == "s"
    assert any(ax.get_label() == "<colorbar>" and ax.get_ylabel() == "dB" for ax in fig.axes)


def test_saved_figures_are_palette_pngs_that_look_like_the_figure(teacher_path, tmp_path):
    import io

    import numpy as np
    from PIL import Image

    from framilab.plots import save_figure

    teacher, test = load_teacher(teacher_path), load_dataset("synthetic", split="test", n_per_class=2, progress=False)
    fig = real_vs_synthetic(teacher.feature_config, teacher.classes, test.tensors(), {}, per_class=2)
    save_figure(fig, tmp_path / "a.png", tmp_path / "b" / "a.png", dpi=40)
    rendered = io.BytesIO()
    fig.savefig(rendered, format="png", dpi=40)
    full = np.asarray(Image.open(rendered).convert("RGB"), dtype=float)
    saved = Image.open(tmp_path / "b" / "a.png")
    assert saved.mode == "P" and saved.size == tuple(round(s * 40) for s in fig.get_size_inches())
    assert np.abs(np.asarray(saved.convert("RGB"), dtype=float) - full).mean() < 2.0, "within 2 of 255 on average"
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b" / "a.png").read_bytes()
