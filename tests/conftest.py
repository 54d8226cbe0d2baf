"""Shared fixtures: a private feature cache and one random start per test, real-data folders, a WAV writer, and nbval runs."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

REAL_DATA = os.environ.get("FRAMILAB_DATA")
TESTS = Path(__file__).resolve().parent
SANITIZE = TESTS / "nbval_sanitize.cfg"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own feature cache, so no test sees another's entries."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("FRAMILAB_CACHE", str(cache))
    return cache


@pytest.fixture(autouse=True)
def same_random_start():
    """Every test starts from one random state, so its numbers do not depend on which tests ran before it."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory):
    """One feature cache for all real-data tests, so FSDD and ESC-10 are decoded once per session."""
    return tmp_path_factory.mktemp("real-cache")


def real_root(name: str) -> Path:
    """$FRAMILAB_DATA/<name>, or skip the test with the reason."""
    if not REAL_DATA:
        pytest.skip("real data not available: set FRAMILAB_DATA to the folder holding fsdd/ and esc10/ "
                    "(.ci/run points it at ../shared/data)")
    root = Path(REAL_DATA) / name
    if not root.is_dir():
        pytest.skip(f"real data not available: {root} does not exist")
    return root


def tone(freq: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav(path: Path, data: np.ndarray, sample_rate: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sample_rate, subtype="PCM_16")
    return path


def run_nbval(notebooks: list[Path], cwd: Path, *, lax: bool = False, timeout: int = 600) -> subprocess.CompletedProcess:
    """pytest --nbval on `notebooks` in a subprocess, outputs sanitised by tests/nbval_sanitize.cfg (timings,
    progress bars, paths), or --nbval-lax (only cells marked for checking are compared); either way with
    tests/nbval_guard.py loaded: a slow machine is not a failing notebook, a dead kernel fails at once."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
           "PYTHONFAULTHANDLER": "1"}
    mode = ["--nbval-lax"] if lax else ["--nbval", "--nbval-sanitize-with", str(SANITIZE)]
    return subprocess.run([sys.executable, "-m", "pytest", *mode, *map(str, notebooks), "-p", "nbval_guard",
                           "-p", "no:cacheprovider", "-q"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
