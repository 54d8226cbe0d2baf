"""Models: the (logits, h, e) contract, length-invariant embeddings, gradients, presets, cost, batch-norm folding."""
from __future__ import annotations

import pytest
import torch

from framilab.data.synthetic import DEFAULT_CONFIG
from framilab.models import PRESETS, build_model, model_cost
from framilab.models.folding import FoldedBatchNorm, fold_batchnorm
from framilab.synthesis import BNStatistics


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("frames", [40, 101, 173])
def test_shapes_for_any_length(preset, frames):
    model = build_model(preset, n_mels=64, n_classes=7)
    logits, h, e = model(torch.randn(3, 64, frames))
    assert logits.shape == (3, 7)
    assert h.shape[:2] == (3, model.channels) and h.shape[2] >= 2
    assert e.shape == (3, model.embed_dim)


@pytest.mark.parametrize("preset", ["resnet-teacher", "tdnn-teacher"])
@pytest.mark.parametrize("pooling", ["stats", "attentive"])
def test_embedding_does_not_depend_on_length(preset, pooling):
    torch.manual_seed(0)
    model = build_model(preset, n_mels=64, n_classes=5, pooling=pooling)
    model.train()
    model(torch.randn(16, 64, 96))  # give batch norm non-trivial running statistics
    model.eval()
    pattern = torch.randn(2, 64, 48)
    _, _, e_short = model(pattern.repeat(1, 1, 4))
    _, _, e_long = model(pattern.repeat(1, 1, 8))
    _, _, e_other = model(torch.randn(2, 64, 192))
    similar = torch.cosine_similarity(e_short, e_long).min()
    different = torch.cosine_similarity(e_short, e_other).max()
    assert similar > 0.98, f"the same signal at two lengths gave embeddings with cosine {similar:.3f}"
    assert different < similar


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_gradients_reach_the_input(preset):
    model = build_model(preset, n_mels=40, n_classes=10)
    x = torch.randn(2, 40, 64, requires_grad=True)
    logits, h, e = model(x)
    (logits.sum() + h.mean() + e.mean()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_input_checks_and_unknown_preset():
    model = build_model("resnet-student", n_mels=64, n_classes=3)
    with pytest.raises(ValueError, match=r"has 8 frames but this model needs at least 17"):
        model(torch.randn(1, 64, 8))
    with pytest.raises(ValueError, match=r"expected a log-Mel batch \(B, 64, T\)"):
        model(torch.randn(1, 40, 100))
    with pytest.raises(ValueError, match=r"unknown model preset 'resnet-huge'; choose one of"):
        build_model("resnet-huge", 64, 3)
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        build_model("tdnn-student", 64, 3, pooling="max")
    with pytest.raises(ValueError, match="bad arguments for preset 'tdnn-student'"):
        build_model("tdnn-student", 64, 3, depth=9)


def test_cost_students_are_cheaper_than_teachers():
    cost = {p: model_cost(build_model(p, DEFAULT_CONFIG.n_mels, 10), DEFAULT_CONFIG) for p in PRESETS}
    for family in ("resnet", "tdnn"):
        teacher, student = cost[f"{family}-teacher"], cost[f"{family}-student"]
        assert student["params"] < teacher["params"] / 4
        assert 0 < student["mflops_per_second_of_audio"] < teacher["mflops_per_second_of_audio"] / 4
    # A 3x3 conv's 9 MACs per output pixel at least: the count must be in the right range.
    assert 20 < cost["resnet-teacher"]["mflops_per_second_of_audio"] < 200


@pytest.mark.parametrize("preset", ["resnet-teacher", "tdnn-student"])
def test_folding_batch_norm_keeps_outputs_bn_loss_and_input_gradient(preset):
    """In float64, so that any difference is the folding's and not float32 rounding."""
    torch.manual_seed(0)
    model = build_model(preset, n_mels=32, n_classes=5).double()
    model.train()
    model(3.0 + 2.0 * torch.randn(16, 32, 80, dtype=torch.float64))  # running statistics far from (0, 1)
    for bn in (m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))):
        torch.nn.init.uniform_(bn.weight, 0.5, 2.0)
        torch.nn.init.normal_(bn.bias)
    model.eval()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in folded.modules())
    assert sum(isinstance(m, FoldedBatchNorm) for m in folded.modules()) == sum(
        isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in model.modules())
    assert all(p.requires_grad for p in model.parameters()), "the original model is left as it was"
    assert not any(p.requires_grad for p in folded.parameters())
    x = torch.randn(8, 32, 80, dtype=torch.float64)
    results = []
    for net in (model, folded):
        stats, x_in = BNStatistics(net), x.clone().requires_grad_(True)
        with stats:
            logits, h, e = net(x_in)
        loss = stats.loss()
        (logits.logsumexp(1).sum() + 0.05 * loss).backward()
        results.append((logits, h, e, loss, x_in.grad))
    for original, fold in zip(*results):
        torch.testing.assert_close(fold, original, rtol=1e-9, atol=1e-9)
    assert results[0][3] > 1.0, "inputs unlike the running statistics give a clear BN loss"


def test_a_batch_norm_with_a_dead_channel_is_not_folded_and_the_bn_loss_stays_the_same():
    """A zero scale would erase the channel's input statistics from the folded output."""
    torch.manual_seed(0)
    model = build_model("tdnn-student", n_mels=32, n_classes=5)
    model.train()
    model(1.0 + torch.randn(16, 32, 80))
    model.eval()
    dead = model.encoder[1][1]
    with torch.no_grad():
        dead.weight[3] = 0.0
    folded = fold_batchnorm(model)
    assert isinstance(folded.encoder[1][1], torch.nn.BatchNorm1d)
    assert isinstance(folded.encoder[0][1], FoldedBatchNorm)
    x = torch.randn(8, 32, 80)
    losses = []
    for net in (model, folded):
        stats = BNStatistics(net)
        with stats:
            net(x)
        losses.append(stats.loss())
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=0)


@pytest.mark.parametrize("size", [(64, 80), (64, 81), (40, 17), (33, 100)])
def test_subsampled_shortcut_is_a_strided_1x1_convolution(size):
    """The ResNet shortcut computes exactly nn.Conv2d(kernel 1, stride 2), forward and backward, at odd and even
    sizes, with the same state-dict keys (so checkpoints of either load into the other)."""
    from framilab.models.resnet import SubsampledPointwiseConv
    torch.manual_seed(0)
    ours, strided = SubsampledPointwiseConv(8, 16, 2), torch.nn.Conv2d(8, 16, 1, stride=2, bias=False)
    strided.load_state_dict(ours.state_dict())
    x = torch.randn(3, 8, *size, dtype=torch.float64, requires_grad=True)
    ours.double(), strided.double()
    y = ours(x)
    torch.testing.assert_close(y, strided(x))
    assert y.shape[-2:] == ((size[0] + 1) // 2, (size[1] + 1) // 2)
    y.square().sum().backward()
    grad_x, grad_w = x.grad.clone(), ours.weight.grad.clone()
    x.grad = None
    strided(x).square().sum().backward()
    torch.testing.assert_close(grad_x, x.grad)
    torch.testing.assert_close(grad_w, strided.weight.grad)


def test_no_strided_1x1_convolution_reaches_onednn():
    """oneDNN's backward-weights kernel for a channels-last 1x1 convolution of stride > 1 writes past its
    workspace when the input has fewer channels than its block (framilab/models/resnet.py): no preset has one."""
    for preset in PRESETS:
        for module in build_model(preset, 64, 10).modules():
            if isinstance(module, torch.nn.Conv2d) and module.kernel_size == (1, 1):
                assert module.stride == (1, 1), f"{preset}: {module}"
