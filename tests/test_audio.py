"""Reading odd audio files: other sample rates, stereo, corrupt, empty and silent files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from framilab.audio import AudioError, fit_length, read_audio
from conftest import tone, write_wav


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_sample_rates_are_resampled(tmp_path, rate):
    path = write_wav(tmp_path / "a.wav", tone(440, 0.5, rate), rate)
    wav = read_audio(path, 16000)
    assert wav.dtype == torch.float32
    assert abs(len(wav) - 8000) <= 1
    spectrum = torch.fft.rfft(wav).abs()
    peak_hz = spectrum.argmax().item() * 16000 / len(wav)
    assert abs(peak_hz - 440) < 5


def test_stereo_is_mixed_to_mono(tmp_path):
    left, right = tone(300, 0.2, 16000, 0.4), tone(300, 0.2, 16000, 0.2)
    path = write_wav(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000)
    wav = read_audio(path, 16000)
    assert wav.dim() == 1
    np.testing.assert_allclose(wav.numpy(), (left + right) / 2, atol=1e-3)


def test_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00not really a wav file at all")
    with pytest.raises(AudioError, match=r"broken\.wav: cannot decode audio"):
        read_audio(path, 16000)


def test_zero_length_file(tmp_path):
    path = write_wav(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="zero-length"):
        read_audio(path, 16000)


def test_all_silent_file(tmp_path):
    path = write_wav(tmp_path / "quiet.wav", np.zeros(1600, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="all-silent"):
        read_audio(path, 16000)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="file not found"):
        read_audio(tmp_path / "nope.wav", 16000)


def test_fit_length_modes():
    wav = torch.arange(1.0, 5.0)
    assert fit_length(wav, 6, "end").tolist() == [1, 2, 3, 4, 0, 0]
    assert fit_length(wav, 6, "center").tolist() == [0, 1, 2, 3, 4, 0]
    assert fit_length(wav, 6, "repeat").tolist() == [1, 2, 3, 4, 1, 2]
    assert fit_length(wav, 2, "center").tolist() == [2, 3]
    assert fit_length(wav, 2, "end").tolist() == [1, 2]
    with pytest.raises(ValueError, match="unknown length mode 'left'"):
        fit_length(wav, 6, "left")
