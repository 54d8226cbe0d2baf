"""The log-Mel front end, normalisation, Griffin-Lim inversion and the feature cache."""
from __future__ import annotations

import os
import time

import pytest
import torch
import torchaudio.functional as AF

from framilab.cache import CacheWarning, FeatureCache
from framilab.data import load_dataset
from framilab.features import FeatureConfig, Normalizer, log_mel, mel_to_audio
from conftest import tone, write_wav

CONFIG = FeatureConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, clip_seconds=1.0)


@pytest.mark.parametrize("freq", [250.0, 1000.0, 4000.0])
def test_pure_tone_lands_in_expected_mel_bin(freq):
    spec = log_mel(torch.from_numpy(tone(freq, 1.0, 16000)), CONFIG)
    assert spec.shape == (64, CONFIG.frames())
    centres = AF.melscale_fbanks(CONFIG.n_fft // 2 + 1, 0.0, 8000.0, 64, 16000).argmax(dim=0)
    expected = int((centres.float() * 16000 / CONFIG.n_fft - freq).abs().argmin())
    assert abs(int(spec.mean(dim=1).argmax()) - expected) <= 1


def test_griffin_lim_round_trip_keeps_the_log_mel_spectrum():
    t = torch.arange(16000) / 16000
    wav = 0.3 * torch.sin(2 * torch.pi * (300 + 400 * t) * t) + 0.2 * torch.sin(2 * torch.pi * 1800 * t)
    spec = log_mel(wav, CONFIG)
    back = mel_to_audio(spec, CONFIG, n_iter=32)
    assert back.shape[-1] == pytest.approx(len(wav), abs=CONFIG.hop_length)
    spec_back = log_mel(back, CONFIG)
    frames = min(spec.shape[-1], spec_back.shape[-1])
    active = spec[:, :frames] > spec.max() - 40
    error_db = (spec[:, :frames] - spec_back[:, :frames]).abs()[active]
    # Measured: median 1.2 dB, mean 4.6 dB (phase-less edges); an unrelated tone differs by ~45 dB.
    assert error_db.median() < 2.0 and error_db.mean() < 6.0, f"median {error_db.median():.2f} dB, mean {error_db.mean():.2f} dB"


def test_mel_to_audio_checks_mel_bins():
    with pytest.raises(ValueError, match="40 mel bins but the config says 64"):
        mel_to_audio(torch.zeros(40, 10), CONFIG)


def test_config_round_trip_and_unknown_field():
    assert FeatureConfig.from_dict(CONFIG.to_dict()) == CONFIG
    with pytest.raises(ValueError, match=r"unknown FeatureConfig fields \[.hop.\]; valid names"):
        FeatureConfig.from_dict({**CONFIG.to_dict(), "hop": 10})
    with pytest.raises(ValueError, match="f_max"):
        FeatureConfig(sample_rate=8000, f_max=6000.0)
    assert CONFIG.key() != CONFIG.replace(n_mels=40).key()


def test_normalizer_standardises_each_mel_bin():
    specs = [torch.randn(8, 50) * torch.arange(1.0, 9.0)[:, None] + 5 for _ in range(4)]
    norm = Normalizer.fit(specs)
    out = torch.cat([norm(s) for s in specs], dim=1)
    assert out.mean(dim=1).abs().max() < 1e-4
    assert (out.std(dim=1, unbiased=False) - 1).abs().max() < 1e-3
    torch.testing.assert_close(norm.denormalize(norm(specs[0])), specs[0])
    with pytest.raises(ValueError, match="training split is empty"):
        Normalizer.fit([])


def test_cache_hits_on_second_run_and_misses_after_a_file_changes(tmp_path):
    path = write_wav(tmp_path / "a.wav", tone(500, 0.5, 16000), 16000)
    calls = []

    def compute():
        calls.append(1)
        return torch.ones(3)

    cache = FeatureCache(tmp_path / "cache", CONFIG)
    cache.get(path, compute)
    cache.get(path, compute)
    assert (cache.hits, cache.misses, len(calls)) == (1, 1, 1)
    FeatureCache(tmp_path / "cache", CONFIG.replace(n_mels=40)).get(path, compute)
    assert len(calls) == 2, "a different config must not reuse the entry"
    time.sleep(0.01)
    write_wav(path, tone(700, 0.5, 16000), 16000)
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    cache.get(path, compute)
    assert len(calls) == 3, "a changed file must not reuse the entry"


def test_damaged_cache_entry_is_recomputed(tmp_path):
    path = write_wav(tmp_path / "a.wav", tone(500, 0.5, 16000), 16000)
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    cache.get(path, lambda: torch.ones(3))
    entry = next((tmp_path / "cache").rglob("*.pt"))
    entry.write_bytes(b"garbage")
    assert cache.get(path, lambda: torch.zeros(3)).tolist() == [0, 0, 0]


def test_dataset_second_load_comes_from_cache(tmp_path, private_cache):
    root = tmp_path / "fsdd"
    for i in range(3):
        write_wav(root / "recordings" / f"{i}_alice_{i + 5}.wav", tone(300 + 100 * i, 0.4, 8000), 8000)
    first = load_dataset("fsdd", root, progress=False)
    entries = sorted(private_cache.rglob("*.pt"))
    assert len(entries) == 3
    mtimes = [p.stat().st_mtime_ns for p in entries]
    second = load_dataset("fsdd", root, progress=False)
    assert [p.stat().st_mtime_ns for p in sorted(private_cache.rglob("*.pt"))] == mtimes
    torch.testing.assert_close(torch.stack(first.features), torch.stack(second.features))


def test_a_file_rewritten_in_place_with_its_size_and_mtime_restored_misses_the_cache(tmp_path):
    path = write_wav(tmp_path / "a.wav", tone(500, 0.5, 16000), 16000)
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    old = cache.get(path, lambda: log_mel(torch.from_numpy(tone(500, 0.5, 16000)), CONFIG))
    stat = path.stat()
    write_wav(path, tone(2000, 0.5, 16000), 16000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    new = cache.get(path, lambda: log_mel(torch.from_numpy(tone(2000, 0.5, 16000)), CONFIG))
    assert cache.misses == 2 and (new - old).abs().max() > 20, "the old features were served"


def test_cache_folder_with_a_tilde_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    path = write_wav(tmp_path / "a.wav", tone(500, 0.5, 16000), 16000)
    FeatureCache("~/features", CONFIG).get(path, lambda: torch.ones(3))
    monkeypatch.setenv("FRAMILAB_CACHE", "~/env-features")
    FeatureCache(None, CONFIG).get(path, lambda: torch.ones(3))
    assert len(list((tmp_path / "home" / "features").rglob("*.pt"))) == 1
    assert len(list((tmp_path / "home" / "env-features").rglob("*.pt"))) == 1
    assert not (tmp_path / "~").exists()


def test_an_unwritable_cache_warns_once_and_the_data_loads_without_it(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    with pytest.warns(CacheWarning, match=r"feature cache .*not-a-folder cannot be written .* going on without it") as record:
        ds = load_dataset("synthetic", split="test", n_per_class=2, cache_dir=blocked, progress=False)
    assert len(ds) == 20 and len(record) == 1
