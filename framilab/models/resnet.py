"""ResNet-style 2-D CNN encoder: residual blocks over (mel, time), frequency folded into channels.

Weights and activations are kept channels-last: on a CPU the oneDNN convolutions then skip a layout
copy around every layer, which makes a teacher's forward and backward pass about 1.5x faster (and
changes no result beyond float rounding). Checkpoints and fingerprints see the same logical tensors.

Strided 1x1 shortcuts are a stride-1 convolution over every s-th row and column (`SubsampledPointwiseConv`),
because torch 2.11's oneDNN (3.10.2) mishandles a channels-last 1x1 convolution of stride > 1 in backward.
Its 1x1 backward-weights kernel (`jit_1x1`, ONEDNN_VERBOSE names it) first copies the strided input into a
"reduce to unit stride" workspace, and for a channels-last source it steps through that workspace by the
kernel's channel block (8 floats with AVX2, 16 with AVX-512) instead of by the input's channel count; with
fewer input channels than the block it writes past the workspace: a segfault, "double free or corruption",
a hang with every thread spinning, or wrong weight gradients (oneDNN issue 6035). oneDNN takes that kernel
only when height and width are whole multiples of the stride (at odd frame counts a generic kernel runs),
so the crash came and went with the frame count. resnet-student's first shortcut (8 -> 8 channels, stride 2)
met it on AVX-512 CPUs at even frame counts; on this project's AVX2 hosts the same happens to a 4-channel
shortcut (a resnet-student with widths (4, 8, 16, 32), batch 64: T = 80 segfaults, T = 64 and 81 pass; a
lone 4 -> 8 channel 1x1 stride-2 convolution hangs at 32 x 32 and segfaults at 32 x 80), while 8 channels
fill the AVX2 block exactly. Contiguous tensors (a blocked layout inside oneDNN) avoid it too, at the cost of
channels-last's speed; ONEDNN_MAX_CPU_ISA=AVX2 gives up AVX-512 and still fails below 8 input channels. The
subsampled convolution never reaches that kernel, at any width, length or instruction set.
"""
from __future__ import annotations

import torch
from torch import nn

from .classifier import StatsPoolingClassifier


class SubsampledPointwiseConv(nn.Conv2d):
    """A 1x1 convolution of stride `step`, computed as a stride-1 one on x[..., ::step, ::step]: the same
    weights, the same output and state-dict keys as nn.Conv2d(c_in, c_out, 1, stride=step), without the
    oneDNN kernel that corrupts memory (see the module docstring)."""

    def __init__(self, c_in: int, c_out: int, step: int):
        super().__init__(c_in, c_out, 1, bias=False)
        self.step = step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x[:, :, ::self.step, ::self.step])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, step={self.step}"


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a (projected) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            SubsampledPointwiseConv(c_in, c_out, stride), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """(B, F, T) -> (B, widths[-1] * F', T'), where F' and T' are F and T over the total stride."""

    def __init__(self, widths: tuple[int, ...], strides: tuple[int, ...]):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU())
        blocks, c_in = [], widths[0]
        for width, stride in zip(widths, strides):
            blocks.append(BasicBlock(c_in, width, stride))
            c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks(self.stem(x.unsqueeze(1).contiguous(memory_format=torch.channels_last)))
        return y.flatten(1, 2)


def _strided(size: int, strides: tuple[int, ...]) -> int:
    for stride in strides:
        size = (size - 1) // stride + 1
    return size


class ResNet(StatsPoolingClassifier):
    """ResNet-style classifier with statistics pooling over time."""

    family = "resnet"

    def __init__(self, n_mels: int, n_classes: int, widths: tuple[int, ...] = (16, 32, 64, 128),
                 strides: tuple[int, ...] = (2, 2, 2, 2), embed_dim: int = 128, pooling: str = "stats"):
        if len(widths) != len(strides):
            raise ValueError(f"widths {widths} and strides {strides} must have the same length")
        channels = widths[-1] * _strided(n_mels, strides)
        total_stride = 1
        for stride in strides:
            total_stride *= stride
        super().__init__(n_mels, n_classes, ResNetEncoder(tuple(widths), tuple(strides)), channels, embed_dim,
                         min_frames=total_stride + 1, pooling=pooling)
