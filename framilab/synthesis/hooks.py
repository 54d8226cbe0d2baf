"""DeepInversion's batch-norm statistics loss, through forward hooks on every BN layer of the teacher."""
from __future__ import annotations

import warnings

import torch
from torch import nn


class NoBatchNormWarning(UserWarning):
    """The teacher has no batch norm, so the BN-statistics loss is switched off."""


class BNStatistics:
    """Collects, for each BatchNorm1d/2d of `model`, the distance between the batch statistics of its
    input and the layer's running statistics; `loss()` sums them over layers.

    Hooks record only while `active` is True, so extra passes (views, evaluation) do not count.
    """

    def __init__(self, model: nn.Module):
        self.layers = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
        self.handles = [layer.register_forward_hook(self._hook) for layer in self.layers]
        self.terms: list[torch.Tensor] = []
        self.active = False
        if not self.layers:
            warnings.warn("the teacher has no BatchNorm1d/BatchNorm2d layers, so there are no statistics to match: "
                          "the BN loss is switched off (weight bn=0)", NoBatchNormWarning, stacklevel=2)

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        if not self.active:
            return
        x = inputs[0]
        dims = [0] + list(range(2, x.dim()))
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        self.terms.append(torch.norm(mean - module.running_mean, 2) + torch.norm(var - module.running_var, 2))

    def __enter__(self) -> "BNStatistics":
        self.terms = []
        self.active = True
        return self

    def __exit__(self, *exc) -> None:
        self.active = False

    def loss(self) -> torch.Tensor:
        if not self.terms:
            return torch.zeros(())
        return torch.stack(self.terms).sum()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
