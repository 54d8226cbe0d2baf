"""Diversity measures on constructed cases whose answers are known."""
from __future__ import annotations

import pytest
import torch

from framilab.diversity import (confidence_and_entropy, frechet_distance, mean_cosine_diversity,
                                per_class_cosine_diversity, precision_recall_coverage, project_2d)


def test_identical_samples_have_zero_diversity():
    e = torch.randn(1, 16).repeat(10, 1)
    labels = torch.tensor([0] * 5 + [1] * 5)
    assert per_class_cosine_diversity(e, labels) == {0: pytest.approx(0, abs=1e-6), 1: pytest.approx(0, abs=1e-6)}


def test_random_directions_are_diverse_and_more_samples_do_not_change_it():
    torch.manual_seed(0)
    e = torch.randn(400, 64)
    labels = torch.arange(400) % 4
    assert mean_cosine_diversity(e, labels) == pytest.approx(1.0, abs=0.05)
    narrow = torch.randn(1, 64) + 0.1 * torch.randn(400, 64)
    assert mean_cosine_diversity(narrow, labels) < 0.05


def test_frechet_distance_detects_a_shifted_copy():
    torch.manual_seed(1)
    real = torch.randn(500, 8)
    same = torch.randn(500, 8)
    shifted = same + 2.0
    assert frechet_distance(real, same) < 0.3
    assert frechet_distance(real, shifted) == pytest.approx(8 * 4.0, rel=0.15)


def test_precision_recall_coverage():
    torch.manual_seed(2)
    real = torch.randn(300, 4)
    assert precision_recall_coverage(real, torch.randn(300, 4))["coverage"] > 0.8
    collapsed = real[:1].repeat(300, 1) + 0.01 * torch.randn(300, 4)
    scores = precision_recall_coverage(real, collapsed)
    assert scores["precision"] > 0.9 and scores["recall"] < 0.05 and scores["coverage"] < 0.05
    far = precision_recall_coverage(real, torch.randn(300, 4) + 10)
    assert far["precision"] == 0 and far["coverage"] == 0


def test_confidence_and_entropy():
    sure = confidence_and_entropy(torch.tensor([[20.0, 0, 0]]))
    unsure = confidence_and_entropy(torch.zeros(1, 3))
    assert sure["confidence"] == pytest.approx(1.0) and sure["entropy"] == pytest.approx(0, abs=1e-6)
    assert unsure["confidence"] == pytest.approx(1 / 3) and unsure["entropy"] == pytest.approx(torch.log(torch.tensor(3.0)).item())


def test_projection_shares_one_plane_and_leaves_the_random_stream_alone():
    a, b = torch.randn(20, 10), torch.randn(5, 10) + 3
    state = torch.get_rng_state()
    pa, pb = project_2d(a, b)
    assert torch.equal(torch.get_rng_state(), state), "a live plot must not change what synthesis draws next"
    assert pa.shape == (20, 2) and pb.shape == (5, 2)
    assert (pb.mean(0) - pa.mean(0)).norm() > 3
    line = torch.linspace(-1, 1, 30)[:, None] * torch.tensor([[3.0, 4.0, 0.0]])
    first_axis = project_2d(line + 0.01 * torch.randn(30, 3))[0][:, 0]
    assert float(first_axis.std()) == pytest.approx(5 * float(torch.linspace(-1, 1, 30).std()), rel=0.02)
