"""The training loop: learning, exact resume, refusals, NaN losses and self-describing checkpoints."""
from __future__ import annotations

import json
import os

import pytest
import torch

from framilab.checkpoint import (CheckpointError, RunExistsError, load_checkpoint, load_teacher, save_checkpoint,
                                 start_or_resume)
from framilab.data import load_dataset
from framilab.features import Normalizer
from framilab.models import build_model
from framilab.train import TrainConfig, evaluate, train_classifier
from conftest import real_root

FAST = TrainConfig(epochs=3, batch_size=32, lr=3e-3, crop_frames=64, seed=3)


@pytest.fixture(scope="module")
def tiny():
    train = load_dataset("synthetic", split="train", n_per_class=12, progress=False)
    test = load_dataset("synthetic", split="test", n_per_class=6, progress=False)
    return train, test


def test_loss_goes_down_and_files_are_written(tiny, tmp_path):
    metrics = train_classifier("tdnn-student", *tiny, tmp_path, TrainConfig(epochs=6, batch_size=24, seed=1),
                               progress=False)
    losses = [r["train_loss"] for r in metrics["history"]]
    assert losses[-1] < 0.7 * losses[0], losses
    stored = json.loads((tmp_path / "teacher_metrics.json").read_text())
    for key in ("test_accuracy", "per_class_accuracy", "epochs", "train_seconds", "params", "mflops_per_second_of_audio"):
        assert key in stored
    assert len(stored["per_class_accuracy"]) == 10 and stored["epochs"] == 6
    assert (tmp_path / "teacher.pt").is_file() and (tmp_path / "teacher_checkpoint.pt").is_file()


def test_resume_gives_the_same_numbers_as_an_uninterrupted_run(tiny, tmp_path):
    straight = train_classifier("tdnn-student", *tiny, tmp_path / "a", FAST, progress=False)

    class Interrupt(Exception):
        pass

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_classifier("tdnn-student", *tiny, tmp_path / "b", FAST, progress=False, on_epoch=stop_after_first)
    assert load_checkpoint(tmp_path / "b" / "teacher_checkpoint.pt")["epoch"] == 1
    resumed = train_classifier("tdnn-student", *tiny, tmp_path / "b", FAST, progress=False, resume=True)
    assert [r["train_loss"] for r in resumed["history"]] == [r["train_loss"] for r in straight["history"]]
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    a = load_teacher(tmp_path / "a" / "teacher.pt").model.state_dict()
    b = load_teacher(tmp_path / "b" / "teacher.pt").model.state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)


def test_a_callback_that_draws_random_numbers_does_not_move_the_runs_stream(tiny, tmp_path):
    def watch(draw):
        seen = []

        def on_epoch(record):
            seen.append(torch.get_rng_state())
            if draw:
                torch.rand(100)
        train_classifier("tdnn-student", *tiny, tmp_path / str(draw), FAST, progress=False, on_epoch=on_epoch)
        return seen

    quiet, drawing = watch(False), watch(True)
    assert len(drawing) == FAST.epochs
    for a, b in zip(quiet, drawing):
        assert torch.equal(a, b)


def test_finished_run_is_refused_unless_told(tiny, tmp_path):
    train_classifier("tdnn-student", *tiny, tmp_path, TrainConfig(epochs=1), progress=False)
    with pytest.raises(RunExistsError, match="already holds a finished run; pass resume=True .* or overwrite=True"):
        train_classifier("tdnn-student", *tiny, tmp_path, TrainConfig(epochs=1), progress=False)
    with pytest.raises(ValueError, match="cannot resume .* Use the same settings or overwrite=True"):
        train_classifier("tdnn-student", *tiny, tmp_path, TrainConfig(epochs=2), progress=False, resume=True)
    again = train_classifier("tdnn-student", *tiny, tmp_path, TrainConfig(epochs=2), progress=False, overwrite=True)
    assert again["epochs"] == 2


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tiny, tmp_path, monkeypatch):
    import framilab.train as train_module

    cfg = TrainConfig(epochs=3, batch_size=24, seed=0)
    steps_per_epoch = -(-len(tiny[0]) // cfg.batch_size)
    real_loss, calls = train_module._loss, []

    def loss_that_explodes_in_epoch_two(*args):
        calls.append(1)
        loss, logits = real_loss(*args)
        return (loss * float("nan") if len(calls) > steps_per_epoch else loss), logits

    monkeypatch.setattr(train_module, "_loss", loss_that_explodes_in_epoch_two)
    with pytest.raises(FloatingPointError, match="loss became nan at epoch 2, step 1; the last good checkpoint is kept"):
        train_classifier("tdnn-student", *tiny, tmp_path, cfg, progress=False)
    kept = load_checkpoint(tmp_path / "teacher_checkpoint.pt")
    assert kept["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in kept["model_state"].values() if v.is_floating_point())


def test_non_finite_features_are_refused_before_training(tiny, tmp_path):
    train, test = tiny
    saved = train.features[5].clone()
    train.features[5][3, 7] = float("inf")
    try:
        with pytest.raises(ValueError, match="training features hold NaN or infinite values"):
            train_classifier("tdnn-student", train, test, tmp_path, FAST, progress=False)
    finally:
        train.features[5] = saved


def test_teacher_checkpoint_is_self_describing(tiny, tmp_path):
    train_classifier("resnet-student", *tiny, tmp_path, TrainConfig(epochs=1), progress=False)
    teacher = load_teacher(tmp_path / "teacher.pt")
    assert teacher.classes == tiny[0].classes and teacher.feature_config == tiny[0].config
    assert teacher.preset == "resnet-student" and not teacher.model.training
    again = evaluate(teacher.model, teacher.normalizer, tiny[1])["accuracy"]
    assert again == pytest.approx(teacher.metrics["test_accuracy"])
    assert len(teacher.fingerprint()) == 16


def test_evaluate_gives_the_eval_mode_predictions_and_leaves_the_model_as_it_was(tiny):
    train, test = tiny
    torch.manual_seed(0)
    model = build_model("resnet-student", train.config.n_mels, len(train.classes)).train()
    normalizer = Normalizer.fit(train.features)
    with torch.no_grad():
        for _ in range(3):  # running statistics far from the initial 0 / 1, so batch norm matters
            model(2 * normalizer(train.tensors()[0][:32]) + 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = evaluate(model, normalizer, test)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        expected = model.eval()(normalizer(test.tensors()[0]))[0].argmax(1)
    assert result["accuracy"] == pytest.approx(float((expected == test.tensors()[1]).float().mean()))
    assert sum(map(sum, result["confusion"])) == len(test)


def test_resnet_weights_stay_channels_last_and_keep_their_fingerprint(tiny, tmp_path):
    train_classifier("resnet-student", *tiny, tmp_path, TrainConfig(epochs=1), progress=False)
    teacher = load_teacher(tmp_path / "teacher.pt")
    convs = [m.weight for m in teacher.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    fingerprint = teacher.fingerprint()
    teacher.model.to(memory_format=torch.contiguous_format)
    assert not convs[1].is_contiguous(memory_format=torch.channels_last)
    assert teacher.fingerprint() == fingerprint  # pools made before the layout change still match


def test_bad_checkpoints_are_refused(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"\x00\x01 not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupted or not a torch file"):
        load_teacher(tmp_path / "garbage.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a framilab checkpoint"):
        load_teacher(tmp_path / "foreign.pt")
    save_checkpoint({"kind": "classifier"}, tmp_path / "future.pt")
    payload = torch.load(tmp_path / "future.pt", weights_only=True)
    payload.update(format_version=99, framilab_version="9.0")
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format 99 written by framilab 9.0; this framilab .* reads format 1"):
        load_teacher(tmp_path / "future.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_teacher(tmp_path / "missing.pt")


@pytest.mark.parametrize("epochs", [1, 2])
def test_very_short_runs_train(tiny, tmp_path, epochs):
    """A one-cycle schedule over a handful of steps (here 2 per epoch) must not divide by zero."""
    metrics = train_classifier("tdnn-student", *tiny, tmp_path, TrainConfig(epochs=epochs, batch_size=64),
                               progress=False)
    assert len(metrics["history"]) == epochs


def test_bad_training_options():
    with pytest.raises(ValueError, match=r"unknown training option\(s\) \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        TrainConfig(optimizer="adam")


@pytest.mark.real_data
def test_real_fsdd_student_learns_far_above_chance(tmp_path, real_cache):
    root = real_root("fsdd")
    train = load_dataset("fsdd", root, split="train", cache_dir=real_cache, progress=False)
    test = load_dataset("fsdd", root, split="test", cache_dir=real_cache, progress=False)
    metrics = train_classifier("tdnn-student", train, test, tmp_path, TrainConfig(epochs=4, batch_size=64, seed=0),
                               progress=False)
    assert metrics["test_accuracy"] > 0.8, "chance is 0.1 on ten digits"


class RunsCode:
    """What an attacker's checkpoint holds: unpickling it runs a command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"format": "framilab-checkpoint", "format_version": 1, "kind": "classifier", "x": RunsCode(marker)},
               tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused: it holds Python objects .* could run code "
                                              r"\(Trying to load unsupported GLOBAL posix\.system"):
        load_teacher(tmp_path / "evil.pt")
    assert not marker.exists()


def test_checkpoints_that_do_not_fit_say_what_is_wrong(tiny, tmp_path):
    train_classifier("tdnn-student", *tiny, tmp_path / "run", TrainConfig(epochs=1, batch_size=64), progress=False)
    with pytest.raises(CheckpointError, match=r"run is a folder, not a checkpoint file; pass the file inside it "
                                              r"\(it holds \['teacher\.pt', 'teacher_checkpoint\.pt'\]\)"):
        load_teacher(tmp_path / "run")
    payload = torch.load(tmp_path / "run" / "teacher.pt", weights_only=True)
    save_checkpoint({k: v for k, v in payload.items() if k not in ("normalizer_state", "format", "format_version",
                                                                  "framilab_version")}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"partial\.pt: a classifier checkpoint without \['normalizer_state'\]"):
        load_teacher(tmp_path / "partial.pt")
    payload["preset"] = "tdnn-teacher"
    torch.save(payload, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other\.pt: its weights do not fit preset 'tdnn-teacher' with 64 mels "
                                              r"and 10 classes \(\d+ mismatches, first: size mismatch for "):
        load_teacher(tmp_path / "other.pt")


def test_a_run_killed_before_its_first_checkpoint_is_replaced_and_a_finished_one_is_not(tmp_path):
    checkpoint, finished, partial = tmp_path / "stage_checkpoint.pt", tmp_path / "metrics.json", tmp_path / "pool"
    partial.mkdir()
    (partial / "shard_00000.pt").write_bytes(b"half a round")
    assert start_or_resume(checkpoint, "inversion", (finished,), partial=(partial,), resume=True, overwrite=False,
                           what="a run") is None
    assert not partial.exists(), "nothing to resume without a checkpoint: the partial pool is replaced"
    finished.write_text("{}")
    with pytest.raises(RunExistsError, match="already holds a run; pass resume=True to continue it or overwrite=True"):
        start_or_resume(checkpoint, "inversion", (finished,), resume=False, overwrite=False, what="a run")
    with pytest.raises(RunExistsError, match="holds a run but not its checkpoint stage_checkpoint.pt; use overwrite"):
        start_or_resume(checkpoint, "inversion", (finished,), resume=True, overwrite=False, what="a run")
    assert finished.exists(), "refused, nothing deleted"
