"""Notebook 02 in JupyterLab in headless Chromium: the live Mel-spectrogram widget must render.

nbval compares text; only a browser shows whether the widget manager drew the live plots. Skips,
saying why, where no Chromium or no Playwright package can be had (.ci/run installs both).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from framilab.browser import find_browser, stage_in_jupyterlab
from framilab.layout import Layout
from framilab.pipeline import teacher_stage
from framilab.spec import RunSpec

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = Path(os.environ.get("FRAMILAB_SCREENSHOT", ROOT / "runs" / "browser" / "jupyterlab_inversion.png"))


def test_live_inversion_widget_renders_in_jupyterlab(tmp_path):
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install playwright)")
    if find_browser() is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium; .ci/run does it where apt works)")
    spec = RunSpec.from_dict({"data": {"n_per_class": 4},
                              "teacher": {"epochs": 2, "batch_size": 20, "student": None, "judges": []}})
    teacher_stage(spec, Layout.chain(tmp_path), progress=False)
    report = stage_in_jupyterlab("inversion", SCREENSHOT, run_dir=str(tmp_path), gallery_rounds=0, rounds=3, warmup=0,
                                 steps_per_round=2, batch_size=20, student_steps=1, live_every=1)
    assert report.widget_errors == 0, "JupyterLab shows 'Error displaying widget'"
    assert report.toasts == 0, "a JupyterLab pop-up notification covers the page"
    assert report.widget_images >= 3, f"{report.widget_images} images in widget outputs; want the spectrogram grid, " \
                                      "loss curves and diversity plot"
    assert report.screenshot.stat().st_size > 10_000
