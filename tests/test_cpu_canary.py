"""The crash canary: every model preset, forward and backward, in train and eval mode, at every length from its
minimum to 200 frames (64 mels; every 7th length at 40 mels), batch 2 and 64, and one step of each stage, all in child processes (framilab.cpucheck). A native crash or a
hang fails the test of its group, naming the case, instead of killing or stalling the test run."""
from __future__ import annotations

import sys
import textwrap

import pytest

from framilab import cpucheck
from framilab.models import PRESETS, build_model


@pytest.mark.parametrize("group", cpucheck.groups(), ids=lambda g: f"{g.preset}-{g.n_mels}mels")
def test_every_length_runs_forward_and_backward(group):
    step = 1 if group.n_mels == 64 else 7
    assert group.lengths == tuple(range(build_model(group.preset, group.n_mels, 10).min_frames, 201, step))
    report = cpucheck.check_group(group)
    assert report.ok, report.line()


def test_a_resnet_with_fewer_channels_than_the_kernel_block_runs_at_every_even_length():
    """The AVX-512 crash on an AVX2 host: 4 input channels to a stride-2 shortcut are half of AVX2's block of 8, as
    resnet-student's 8 are half of AVX-512's 16. Before the subsampled shortcut this segfaulted at 80 frames here."""
    group = cpucheck.Group("resnet-student", 64, tuple(range(32, 161, 8)), combos=(("train", 64),),
                           model_args={"widths": [4, 8, 16, 32]})
    report = cpucheck.check_group(group)
    assert report.ok, report.line()


@pytest.fixture(scope="module")
def stage_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("stages")


@pytest.mark.parametrize("stage", cpucheck.STAGES)
def test_one_step_of_each_stage(stage, stage_dir):
    problem = cpucheck.check_stage(stage, stage_dir)
    assert problem is None, problem


def test_the_groups_cover_every_preset_and_shipped_mel_count():
    assert {g.preset for g in cpucheck.groups()} == set(PRESETS)
    assert set(cpucheck.shipped_mel_counts()) == {40, 64}, "AudioMNIST's 40 mels, the others' 64"
    quick = cpucheck.groups(quick=True)
    assert all(q.lengths == g.lengths[::7] for q, g in zip(quick, cpucheck.groups()) if g.n_mels == 64)


def test_a_crash_and_a_hang_fail_their_case_and_the_sweep_goes_on(tmp_path):
    """The parent machinery, on a child whose cases segfault at 20 frames and hang at 22."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent("""
        import ctypes, sys, time
        from framilab import cpucheck
        def fake_case(model, reference, batch, frames, n_mels):
            if frames == 20:
                ctypes.string_at(0)
            if frames == 22:
                time.sleep(600)
            return "wrong input gradient (relative error 3)" if frames == 23 else None
        cpucheck.run_case = fake_case
        sys.exit(cpucheck.main())
    """))
    group = cpucheck.Group("tdnn-student", 40, tuple(range(18, 26)), combos=(("eval", 2),))
    report = cpucheck.check_group(group, case_timeout=20, command=[sys.executable, str(script)])
    assert len(report.failures) == 3, report.line()
    crash, hang, wrong = report.failures
    assert crash.startswith("tdnn-student eval batch 2 x 40 mels x 20 frames: died of SIGSEGV")
    assert "Fatal Python error: Segmentation fault" in crash and "string_at" in crash
    assert hang.startswith("tdnn-student eval batch 2 x 40 mels x 22 frames: no result after 20 s (hung)")
    assert wrong == "tdnn-student eval batch 2 x 40 mels x 23 frames: wrong input gradient (relative error 3)"
    assert not report.ok and "FAILED" in report.line()
