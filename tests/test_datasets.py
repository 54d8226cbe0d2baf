"""Every loader on fixtures in its original layout, and every bad-input case."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from framilab.data import CLASS_DESCRIPTIONS, DataWarning, load_dataset, synthetic, valid_options
from framilab.data.synthetic import make_clip
from framilab.data.validation import held_out_groups, split_off_validation
from conftest import tone, write_wav
from fixtures import make_audiomnist, make_esc50, make_fsdd, make_urbansound8k


@pytest.fixture(scope="module")
def esc50_root(tmp_path_factory):
    return make_esc50(tmp_path_factory.mktemp("ESC-50-master"))


@pytest.fixture(scope="module")
def us8k_root(tmp_path_factory):
    return make_urbansound8k(tmp_path_factory.mktemp("UrbanSound8K"))


@pytest.fixture(scope="module")
def audiomnist_root(tmp_path_factory):
    return make_audiomnist(tmp_path_factory.mktemp("AudioMNIST"))


def test_esc50_folds_and_classes(esc50_root):
    train = load_dataset("esc50", esc50_root, split="train", progress=False)
    test = load_dataset("esc50", esc50_root, split="test", progress=False)
    assert (len(train), len(test)) == (16, 4)
    assert train.classes == ["dog", "rooster", "cat", "helicopter"]
    assert {train.metadata(i)["fold"] for i in range(len(train))} == {1, 2, 3, 4}
    assert {test.metadata(i)["fold"] for i in range(len(test))} == {5}
    x, y = test[0]
    assert x.shape == (64, 251) and isinstance(y, int)
    two = load_dataset("esc50", esc50_root, folds=[2, 3], progress=False)
    assert sorted({c.fold for c in two.clips}) == [2, 3]


def test_esc10_keeps_its_rows_and_maps_targets(esc50_root):
    ds = load_dataset("esc10", esc50_root, progress=False)
    assert ds.classes == ["dog", "rooster", "helicopter"]
    assert sorted(set(ds.targets)) == [0, 1, 2]
    helicopter = [c for c in ds.clips if c.target == 2]
    assert {c.extra["esc50_target"] for c in helicopter} == {40}


def test_urbansound8k_mixed_rates_and_stereo(us8k_root):
    ds = load_dataset("urbansound8k", us8k_root, split="test", progress=False)
    assert len(ds) == 3 and {c.fold for c in ds.clips} == {10}
    assert ds.classes == ["air_conditioner", "car_horn", "children_playing"]
    train = load_dataset("urbansound8k", us8k_root, split="train", progress=False)
    assert len(train) == 27
    assert {x.shape for x, _ in train} == {(64, 201)}
    short = next(i for i, c in enumerate(train.clips) if c.fold == 4)  # a 1 s clip, repeated to 4 s
    assert train[short][0][:, -20:].max() > train[short][0].max() - 20


def test_audiomnist_speaker_disjoint_splits(audiomnist_root):
    train = load_dataset("audiomnist", audiomnist_root, split="train", progress=False)
    test = load_dataset("audiomnist", audiomnist_root, split="test", progress=False)
    train_speakers = {c.speaker for c in train.clips}
    test_speakers = {c.speaker for c in test.clips}
    assert train_speakers.isdisjoint(test_speakers)
    assert len(train_speakers) == 8 and len(test_speakers) == 2
    assert len(test) == 20 and test[0][0].shape == (40, 101)
    assert test.metadata(0)["gender"] in ("male", "female")


def test_fsdd_official_split(tmp_path):
    root = make_fsdd(tmp_path / "fsdd")
    test = load_dataset("fsdd", root, split="test", progress=False)
    train = load_dataset("fsdd", root, split="train", progress=False)
    assert (len(train), len(test)) == (40, 100)
    assert all(c.extra["take"] < 5 for c in test.clips)
    assert load_dataset("fsdd", root, speakers=["bob"], progress=False).class_counts()["3"] == 7


def test_fsdd_leave_one_speaker_out(tmp_path):
    root = make_fsdd(tmp_path / "fsdd", speakers=("alice", "bob", "carol"))
    test = load_dataset("fsdd", root, split="test", test_fold="bob", progress=False)
    train = load_dataset("fsdd", root, split="train", test_fold="bob", progress=False)
    assert (len(train), len(test)) == (140, 70), "all 7 takes x 10 digits of bob; of alice and carol"
    assert {c.speaker for c in test.clips} == {"bob"} and {c.speaker for c in train.clips} == {"alice", "carol"}
    assert {c.extra["take"] for c in test.clips} == set(range(7)), "every take, not the official takes 0-4"
    with pytest.raises(ValueError, match=r"test_fold 'dave' names no speaker with recordings .* \['alice', 'bob', 'carol'\]"):
        load_dataset("fsdd", root, split="train", test_fold="dave", progress=False)
    with pytest.raises(TypeError, match="is a speaker's name"):
        load_dataset("fsdd", root, split="test", test_fold=1, progress=False)


def test_a_validation_split_holds_out_the_last_training_fold_or_speaker_and_keeps_the_test_split_apart(
        esc50_root, tmp_path):
    train = load_dataset("esc50", esc50_root, split="train", progress=False)
    assert held_out_groups(train) == ["fold1", "fold2", "fold3", "fold4"]
    fit, held, group = split_off_validation(train)
    assert (len(fit), len(held), group) == (12, 4, "fold4")
    assert {c.fold for c in fit.clips} == {1, 2, 3} and {c.fold for c in held.clips} == {4}
    torch.testing.assert_close(held[0][0], train[train.clips.index(held.clips[0])][0])
    fit, held, group = split_off_validation(train, "fold2")
    assert group == "fold2" and {c.fold for c in fit.clips} == {1, 3, 4} and {c.fold for c in held.clips} == {2}
    fsdd = load_dataset("fsdd", make_fsdd(tmp_path / "fsdd", speakers=("alice", "bob", "carol")), split="train",
                        progress=False)
    fit, held, group = split_off_validation(fsdd)
    assert group == "carol" and {c.speaker for c in fit.clips} == {"alice", "bob"}
    assert (len(fit), len(held)) == (40, 20) and {c.extra["take"] for c in held.clips} == {5, 6}, \
        "a new voice's training takes; takes 0-4 stay the test split"
    synth = load_dataset("synthetic", split="train", n_per_class=10, cache_dir=tmp_path / "s", progress=False)
    fit, held, group = split_off_validation(synth)
    assert (len(fit), len(held), group) == (80 * len(synth.classes) // 10, 2 * len(synth.classes), "fifth4")
    assert held_out_groups(synth) == [f"fifth{r}" for r in range(5)]
    assert set(held.class_counts().values()) == {2} and set(fit.class_counts().values()) == {8}


def test_a_validation_split_that_would_drop_a_class_or_has_one_group_is_an_error(esc50_root):
    one_fold = load_dataset("esc50", esc50_root, folds=[2], progress=False)
    with pytest.raises(ValueError, match=r"esc50: its training split has one group \(\['fold2'\]\)"):
        split_off_validation(one_fold)
    train = load_dataset("esc50", esc50_root, split="train", progress=False)
    no_dog_in_fold_4 = train.subset([i for i, c in enumerate(train.clips) if not (c.fold == 4 and c.target == 0)])
    with pytest.raises(ValueError, match=r"the held-out \(fold4\) part of the training split has no clip of class\(es\) "
                                         r"\['dog'\]; hold out another group"):
        split_off_validation(no_dog_in_fold_4)
    with pytest.raises(ValueError, match=r"has no group 'fold5' to hold out; its groups: \['fold1', 'fold2', 'fold3', 'fold4'\]"):
        split_off_validation(train, "fold5")


def test_synthetic_is_deterministic_and_balanced(tmp_path):
    a = load_dataset("synthetic", split="test", n_per_class=3, cache_dir=tmp_path / "a", progress=False)
    b = load_dataset("synthetic", split="test", n_per_class=3, cache_dir=tmp_path / "b", progress=False)
    c = load_dataset("synthetic", split="test", n_per_class=3, seed=1, cache_dir=tmp_path / "a", progress=False)
    assert len(a) == 30 and len(a.classes) == len(CLASS_DESCRIPTIONS) >= 10
    assert set(a.class_counts().values()) == {3}
    torch.testing.assert_close(a.tensors()[0], b.tensors()[0])
    assert not torch.allclose(a.tensors()[0], c.tensors()[0])
    train_clip, test_clip = make_clip(0, 0, 0, 0), make_clip(0, 0, 1, 0)
    assert not np.allclose(train_clip, test_clip), "train and test clips must differ"


def test_synthetic_features_are_cached_per_split_and_settings(tmp_path, monkeypatch):
    first = load_dataset("synthetic", split="test", n_per_class=2, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.rglob("*.pt"))) == 1

    def made_again(*args, **kwargs):
        raise AssertionError("a cached split was synthesised again")

    monkeypatch.setattr(synthetic, "make_clip", made_again)
    again = load_dataset("synthetic", split="test", n_per_class=2, cache_dir=tmp_path, progress=False)
    torch.testing.assert_close(first.tensors()[0], again.tensors()[0])
    assert again.tensors()[1].tolist() == first.tensors()[1].tolist()
    with pytest.raises(AssertionError, match="synthesised again"):
        load_dataset("synthetic", split="test", n_per_class=2, snr_db=(0.0, 6.0), cache_dir=tmp_path, progress=False)


def test_unknown_dataset_and_options(esc50_root):
    with pytest.raises(ValueError, match=r"unknown data set 'esc100'.*'synthetic'"):
        load_dataset("esc100")
    with pytest.raises(TypeError, match=r"does not take option\(s\) \['sample_rate'\]; valid options"):
        load_dataset("esc50", esc50_root, sample_rate=8000)
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        load_dataset("esc50", esc50_root, split="valid", progress=False)
    with pytest.raises(ValueError, match="not folds of esc50"):
        load_dataset("esc50", esc50_root, folds=[6], progress=False)
    with pytest.raises(ValueError, match="fsdd has no predefined folds"):
        load_dataset("fsdd", esc50_root, folds=[1])
    assert "test_fold" in valid_options("urbansound8k")


def test_missing_root_and_unset_env(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="esc50 root .*nowhere.* does not exist"):
        load_dataset("esc50", tmp_path / "nowhere")
    monkeypatch.delenv("FRAMILAB_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="FRAMILAB_DATA is not set"):
        load_dataset("fsdd")


def test_wrong_layout_says_what_was_expected(tmp_path):
    (tmp_path / "audio").mkdir()
    with pytest.raises(FileNotFoundError, match=r"expected meta/esc50\.csv .* holds \['audio'\]"):
        load_dataset("esc50", tmp_path)
    with pytest.raises(FileNotFoundError, match="expected metadata/UrbanSound8K.csv"):
        load_dataset("urbansound8k", tmp_path)
    with pytest.raises(FileNotFoundError, match="expected data under"):
        load_dataset("audiomnist", tmp_path)
    with pytest.raises(FileNotFoundError, match="expected recordings under"):
        load_dataset("fsdd", tmp_path)


def test_csv_missing_a_column(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text("filename,fold,category\n1-1-A-0.wav,1,dog\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['target', 'esc10', 'src_file', 'take'\]"):
        load_dataset("esc50", tmp_path)


def test_bad_files_are_skipped_with_one_warning_that_counts_them(tmp_path):
    root = make_fsdd(tmp_path / "fsdd", speakers=("alice",), takes=range(5, 7))
    rec = root / "recordings"
    (rec / "1_alice_9.wav").write_bytes(b"not audio")
    write_wav(rec / "2_alice_9.wav", np.zeros(0, dtype=np.float32), 8000)
    write_wav(rec / "3_alice_9.wav", np.zeros(800, dtype=np.float32), 8000)
    write_wav(rec / "notes.wav", tone(300, 0.2, 8000), 8000)
    write_wav(rec / "4_alice_9.wav", np.stack([tone(300, 0.4, 44100)] * 2, axis=1), 44100)  # stereo 44.1k: fine
    with pytest.warns(DataWarning, match=r"fsdd: skipped 4 of 25 files") as record:
        ds = load_dataset("fsdd", root, progress=False)
    text = str(record[0].message)
    for reason in ("1_alice_9.wav: cannot decode", "2_alice_9.wav: zero-length", "3_alice_9.wav: all-silent",
                   "notes.wav: name does not follow"):
        assert reason in text
    assert len(ds) == 21 and len(ds.skipped) == 4


def test_rows_whose_file_is_missing_are_skipped(esc50_root, tmp_path):
    rows = list(csv.reader(open(esc50_root / "meta" / "esc50.csv")))
    rows.append(["5-9999-A-0.wav", "5", "0", "dog", "True", "9999", "A"])
    (tmp_path / "meta").mkdir()
    (tmp_path / "audio").symlink_to(esc50_root / "audio")
    with open(tmp_path / "meta" / "esc50.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.warns(DataWarning, match=r"skipped 1 of 5 files:\n  .*5-9999-A-0.wav: file not found"):
        ds = load_dataset("esc50", tmp_path, split="test", progress=False)
    assert len(ds) == 4


def test_all_files_unusable_is_an_error(tmp_path):
    write_wav(tmp_path / "recordings" / "1_x_1.wav", np.zeros(100, dtype=np.float32), 8000)
    with pytest.warns(DataWarning), pytest.raises(ValueError, match="no usable audio among 1 listed files"):
        load_dataset("fsdd", tmp_path, progress=False)


def esc50_with_rows(esc50_root, tmp_path, edit, *, encoding="utf-8") -> tuple:
    """A copy of the ESC-50 fixture whose CSV rows went through `edit(rows)` (header excluded)."""
    header, *rows = list(csv.reader(open(esc50_root / "meta" / "esc50.csv")))
    (tmp_path / "meta").mkdir(parents=True)
    (tmp_path / "audio").symlink_to(esc50_root / "audio")
    with open(tmp_path / "meta" / "esc50.csv", "w", newline="", encoding=encoding) as handle:
        csv.writer(handle).writerows([header, *edit(rows)])
    return tmp_path, tmp_path / "meta" / "esc50.csv"


def _set(rows, index, column, value):
    rows[index][["filename", "fold", "target", "category", "esc10", "src_file", "take"].index(column)] = value
    return rows


@pytest.mark.parametrize("edit,message", [
    (lambda rows: _set(rows, 3, "fold", "6"), r"line 5: fold 6 is not one of \[1, 2, 3, 4, 5\]; the row would belong to no split"),
    (lambda rows: _set(rows, 0, "fold", "0"), r"line 2: fold 0 is not one of"),
    (lambda rows: [*rows, rows[2]], r"lines 4 and 22: file '1-1012-A-5.wav' is listed twice"),
    (lambda rows: [*rows, [rows[2][0], "5", *rows[2][2:]]], r"lines 4 and 22: file '1-1012-A-5.wav' is listed twice, "
                                                             r"which would count it twice or put it in two folds"),
    (lambda rows: _set(rows, 5, "target", "99"), r"line 7: target 99 is outside 0..49"),
    (lambda rows: _set(rows, 5, "target", "-1"), r"line 7: target -1 is outside 0..49"),
    (lambda rows: _set(rows, 3, "category", "rooster"), r"lines 3 and 5: category 'rooster' has target 1 and 40"),
    (lambda rows: _set(rows, 5, "category", "crow"), r"lines 3 and 7: target 1 is 'rooster' in one and 'crow' in the other"),
])
def test_esc50_metadata_that_would_change_a_split_or_a_label_is_an_error(esc50_root, tmp_path, edit, message):
    root, csv_path = esc50_with_rows(esc50_root, tmp_path, edit)
    for name in ("esc50", "esc10"):
        with pytest.raises(ValueError, match=rf"{csv_path}, {message}"):
            load_dataset(name, root, split="train", progress=False)


def test_esc50_csv_with_a_byte_order_mark_or_blank_lines_loads_and_counts_lines_right(esc50_root, tmp_path):
    """Errors name the line in the file: blank lines count, and the ESC-10 view keeps the file's numbering."""
    root, csv_path = esc50_with_rows(esc50_root, tmp_path, lambda rows: [*rows[:2], [], [], *rows[2:]],
                                     encoding="utf-8-sig")
    assert len(load_dataset("esc50", root, split="test", progress=False)) == 4
    root, csv_path = esc50_with_rows(esc50_root, tmp_path / "bad", lambda rows: [*rows[:2], [], [],
                                                                                 *_set(rows, 3, "fold", "x")[2:]],
                                     encoding="utf-8-sig")
    for name in ("esc50", "esc10"):
        with pytest.raises(ValueError, match=rf"{csv_path}, line 7: column 'fold' should be an integer, got 'x'"):
            load_dataset(name, root, progress=False)


def test_a_csv_that_is_not_utf8_names_the_file(esc50_root, tmp_path):
    root, csv_path = esc50_with_rows(esc50_root, tmp_path, lambda rows: _set(rows, 0, "category", "chien été"),
                                     encoding="latin-1")
    with pytest.raises(ValueError, match=rf"{csv_path}: not UTF-8 text \(byte 0xe9 at offset \d+\); save it as UTF-8"):
        load_dataset("esc50", root, progress=False)


@pytest.mark.parametrize("folds,error", [
    ("12", r"folds of esc50 must be a list of fold numbers such as \[1, 2\], got the text '12'"),
    (["1", "2"], r"each of folds of esc50 must be a fold number \(an int\), got '1' \(str\)"),
])
def test_folds_must_be_fold_numbers(esc50_root, folds, error):
    with pytest.raises(TypeError, match=error):
        load_dataset("esc50", esc50_root, folds=folds, progress=False)
    with pytest.raises(TypeError, match=r"test_fold of esc50 must be a fold number \(an int\), got '5' \(str\)"):
        load_dataset("esc50", esc50_root, split="test", test_fold="5", progress=False)
    assert {c.fold for c in load_dataset("esc50", esc50_root, folds=5, progress=False).clips} == {5}


def test_urbansound8k_class_names_must_agree_with_their_ids(us8k_root, tmp_path):
    header, *rows = list(csv.reader(open(us8k_root / "metadata" / "UrbanSound8K.csv")))
    rows[4][7] = "siren"
    (tmp_path / "metadata").mkdir()
    (tmp_path / "audio").symlink_to(us8k_root / "audio")
    with open(tmp_path / "metadata" / "UrbanSound8K.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    with pytest.raises(ValueError, match=r"lines 3 and 6: classID 1 is 'car_horn' in one and 'siren' in the other"):
        load_dataset("urbansound8k", tmp_path, progress=False)


def test_fsdd_reads_upper_case_wav_extensions(tmp_path):
    root = make_fsdd(tmp_path / "fsdd", speakers=("alice",), takes=range(4, 7))
    (root / "recordings" / "3_alice_6.wav").rename(root / "recordings" / "3_alice_6.WAV")
    ds = load_dataset("fsdd", root, split="train", progress=False)
    assert len(ds) == 20 and any(c.path.name == "3_alice_6.WAV" for c in ds.clips)


def test_truncated_and_too_short_files_are_skipped_with_the_warning(tmp_path):
    root = make_fsdd(tmp_path / "fsdd", speakers=("alice",), takes=range(5, 7))
    rec = root / "recordings"
    cut = rec / "1_alice_9.wav"
    write_wav(cut, tone(300, 0.5, 8000), 8000)
    cut.write_bytes(cut.read_bytes()[:1000])
    write_wav(rec / "2_alice_9.wav", np.full(1, 0.5, dtype=np.float32), 8000)
    with pytest.warns(DataWarning, match=r"fsdd: skipped 2 of 22 files") as record:
        ds = load_dataset("fsdd", root, progress=False)
    assert "1_alice_9.wav: truncated" in str(record[0].message) and "2_alice_9.wav: 1 samples" in str(record[0].message)
    assert len(ds) == 20
