"""The loaders on the real FSDD and ESC-10 folders ($FRAMILAB_DATA); skipped where they are absent."""
from __future__ import annotations

import pytest

from framilab.benchmarks import grid
from framilab.data import load_dataset
from conftest import real_root

pytestmark = pytest.mark.real_data


def test_real_fsdd_official_split(real_cache):
    root = real_root("fsdd")
    train = load_dataset("fsdd", root, split="train", cache_dir=real_cache, progress=False)
    test = load_dataset("fsdd", root, split="test", cache_dir=real_cache, progress=False)
    assert (len(train), len(test)) == (2250, 250)
    assert set(test.class_counts().values()) == {25}
    assert {c.speaker for c in test.clips} == {"george", "jackson", "nicolas", "theo", "yweweler"}
    x, _ = train[0]
    assert x.shape == (40, 101) and x.max() > x.min() + 40  # real speech, not padding


def test_real_fsdd_leaves_a_benchmark_speaker_out(real_cache):
    root = real_root("fsdd")
    for speaker in (grid.FSDD_SPEAKERS[0], grid.FSDD_SPEAKERS[-1]):
        train = load_dataset("fsdd", root, split="train", test_fold=speaker, cache_dir=real_cache, progress=False)
        test = load_dataset("fsdd", root, split="test", test_fold=speaker, cache_dir=real_cache, progress=False)
        assert (len(train), len(test)) == (2000, 500), speaker
        assert {c.speaker for c in test.clips} == {speaker} and speaker not in {c.speaker for c in train.clips}


def test_real_esc10_quick_protocol(real_cache):
    root = real_root("esc10")
    train = load_dataset("esc10", root, split="train", cache_dir=real_cache, progress=False)
    test = load_dataset("esc10", root, split="test", cache_dir=real_cache, progress=False)
    assert (len(train), len(test)) == (320, 80)
    assert train.classes[:2] == ["dog", "rooster"] and len(train.classes) == 10
    assert set(test.class_counts().values()) == {8}
