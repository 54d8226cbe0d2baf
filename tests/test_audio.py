"""Reading odd audio files: other sample rates, stereo, corrupt, truncated, too short, empty and silent files."""
from __future__ import annotations

import subprocess
import sys

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


def test_truncated_wav_is_refused_not_read_as_a_short_clip(tmp_path):
    path = write_wav(tmp_path / "cut.wav", tone(440, 1.0, 16000), 16000)
    path.write_bytes(path.read_bytes()[:44 + 2 * 2000])  # the header still promises 16,000 samples
    with pytest.raises(AudioError, match=r"cut\.wav: truncated: its header promises 16000 samples, the file holds 2000"):
        read_audio(path, 16000)


@pytest.mark.parametrize("samples,rate", [(1, 8000), (160, 16000), (1500, 16000)])
def test_clips_too_short_to_hold_a_sound_are_refused(tmp_path, samples, rate):
    """One sample would become a second of padding (FSDD) or seconds of DC (repeat); 10 ms repeats into a buzz."""
    path = write_wav(tmp_path / "blip.wav", np.full(samples, 0.5, dtype=np.float32), rate)
    with pytest.raises(AudioError, match=rf"blip\.wav: {samples} samples .* shorter than 0.1 s"):
        read_audio(path, 16000)
    assert len(read_audio(write_wav(tmp_path / "ok.wav", tone(440, 0.1, rate), rate), 16000)) == 1600


RESAMPLE_PEAK = """
import resource, sys
import subprocess
import sys

import numpy as np
import torch
from framilab.audio import read_audio
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
wav = read_audio(sys.argv[1], 16000)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
spectrum = torch.fft.rfft(wav).abs()
print(len(wav), peak // 1024, spectrum.argmax().item() * 16000 / len(wav))
"""


@pytest.mark.parametrize("rate", [22051, 44101])
def test_rates_that_share_no_factor_with_the_target_resample_in_little_memory(tmp_path, rate):
    """torchaudio's exact resampler built a 16,000-phase filter bank for 22,051 Hz (3.66 GB for half a second)."""
    path = write_wav(tmp_path / "odd.wav", tone(440, 1.0, rate), rate)
    out = subprocess.run([sys.executable, "-c", RESAMPLE_PEAK, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    samples, peak_mb, peak_hz = out.stdout.split()
    assert abs(int(samples) - 16000) <= 1 and abs(float(peak_hz) - 440) < 2
    assert int(peak_mb) < 200, f"resampling 1 s from {rate} Hz raised the peak memory by {peak_mb} MB"
