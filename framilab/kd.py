"""Distillation losses: softened-logit KD plus FRAMI's hidden-state reuse before and after statistics pooling.

L = tau^2 KL(softmax(z_T/tau) || softmax(z_S/tau))
    + lambda_pre  * MSE(P_pre(h_S) resampled to T_T', h_T)     (frame level, before pooling)
    + lambda_post * MSE(P_post(e_S), e_T)                       (embedding, after pooling)
P_pre is a 1x1 convolution and P_post a linear layer, learned with the student, so teacher and
student may differ in family, width and frame rate.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .models import StatsPoolingClassifier


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0) -> torch.Tensor:
    """tau^2 * KL(softmax(z_T / tau) || softmax(z_S / tau)), averaged over the batch (Hinton et al.)."""
    teacher_log = F.log_softmax(teacher_logits / temperature, dim=1)
    student_log = F.log_softmax(student_logits / temperature, dim=1)
    return temperature ** 2 * F.kl_div(student_log, teacher_log, log_target=True, reduction="batchmean")


@dataclass(frozen=True)
class DistillLoss:
    """The weights of the distillation loss; 0 switches a term off."""

    temperature: float = 4.0
    kd: float = 1.0
    reuse_pre: float = 1.0
    reuse_post: float = 1.0


class HiddenStateReuse(nn.Module):
    """Learnable projections from the student's hidden states onto the teacher's."""

    def __init__(self, student: StatsPoolingClassifier, teacher: StatsPoolingClassifier):
        super().__init__()
        self.pre = nn.Conv1d(student.channels, teacher.channels, 1)
        self.post = nn.Linear(student.embed_dim, teacher.embed_dim)

    def pre_loss(self, h_student: torch.Tensor, h_teacher: torch.Tensor) -> torch.Tensor:
        """MSE between the projected student frames, resampled in time to the teacher's count, and the teacher's."""
        projected = self.pre(h_student)
        if projected.shape[-1] != h_teacher.shape[-1]:
            projected = F.interpolate(projected, size=h_teacher.shape[-1], mode="linear", align_corners=False)
        return F.mse_loss(projected, h_teacher)

    def post_loss(self, e_student: torch.Tensor, e_teacher: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.post(e_student), e_teacher)


def distillation_loss(student_out: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                      teacher_out: tuple[torch.Tensor, torch.Tensor, torch.Tensor], weights: DistillLoss,
                      reuse: HiddenStateReuse | None) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted loss and each term's value, from (logits, h, e) of student and teacher on one batch."""
    (s_logits, s_h, s_e), (t_logits, t_h, t_e) = student_out, teacher_out
    terms = {}
    if weights.kd:
        terms["kd"] = (weights.kd, kd_loss(s_logits, t_logits, weights.temperature))
    if reuse is not None and weights.reuse_pre:
        terms["reuse_pre"] = (weights.reuse_pre, reuse.pre_loss(s_h, t_h))
    if reuse is not None and weights.reuse_post:
        terms["reuse_post"] = (weights.reuse_post, reuse.post_loss(s_e, t_e))
    total = sum(w * v for w, v in terms.values())
    return total, {k: v.item() for k, (_, v) in terms.items()}
