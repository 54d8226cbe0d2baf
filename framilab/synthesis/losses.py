"""The loss terms of model inversion, as small functions the synthesizers weight and add.

Conventions: spectrogram batches are (B, n_mels, T) in normalised units; logits are (B, C).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Which samples InfoNCE pushes a sample away from (info_nce).
NEGATIVES = ("all", "other_class", "same_class")


def kl_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-sample KL(softmax(p / tau) || softmax(q / tau)), shape (B,)."""
    p_log = F.log_softmax(p_logits / temperature, dim=1)
    q_log = F.log_softmax(q_logits / temperature, dim=1)
    return (p_log.exp() * (p_log - q_log)).sum(dim=1)


def decision_masked_adversarial(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Minus the teacher-student KL, only on samples where both still predict the same class (CMI).

    Minimising it moves samples towards where the student is wrong, but not across the teacher's own
    decision boundary, where samples would stop being examples of their class.
    """
    agree = (teacher_logits.argmax(1) == student_logits.argmax(1)).float()
    return -(kl_divergence(teacher_logits, student_logits) * agree).mean()


def info_nce(query: torch.Tensor, key: torch.Tensor, bank: torch.Tensor | None, temperature: float,
             negatives: str = "all", labels: torch.Tensor | None = None,
             bank_labels: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE: query i and key i are a positive pair; the other keys in the batch and the
    entries of `bank` (K, D) are negatives: all of them, or only those of another class ("other_class")
    or of the same class ("same_class") as sample i, by `labels` (B,) and `bank_labels` (K,).
    Inputs are L2-normalised here."""
    if negatives not in NEGATIVES:
        raise ValueError(f"unknown negatives {negatives!r}; choose one of {NEGATIVES}")
    if negatives != "all" and (labels is None or (bank is not None and bank_labels is None)):
        raise ValueError(f"negatives={negatives!r} needs the batch's labels and the bank's")
    query, key = F.normalize(query, dim=1), F.normalize(key, dim=1)
    targets = torch.arange(len(query), device=query.device)
    keep = None
    if negatives != "all":
        candidates = labels if bank is None or not len(bank) else torch.cat([labels, bank_labels])
        same = labels[:, None] == candidates[None, :]
        keep = (same if negatives == "same_class" else ~same)
        keep[targets, targets] = True
    losses = []
    for a, b in ((query, key), (key, query)):
        logits = a @ b.t()
        if bank is not None and len(bank):
            logits = torch.cat([logits, a @ F.normalize(bank, dim=1).t()], dim=1)
        if keep is not None:
            logits = logits.masked_fill(~keep, float("-inf"))
        losses.append(F.cross_entropy(logits / temperature, targets))
    return sum(losses) / 2


def smoothness(x: torch.Tensor) -> torch.Tensor:
    """DeepInversion's image prior on spectrograms: mean squared difference between neighbouring bins and frames."""
    return ((x[:, 1:] - x[:, :-1]) ** 2).mean() + ((x[..., 1:] - x[..., :-1]) ** 2).mean()


def one_hot_loss(teacher_logits: torch.Tensor) -> torch.Tensor:
    """DAFL: cross-entropy against the teacher's own decision (samples the teacher is sure about)."""
    return F.cross_entropy(teacher_logits, teacher_logits.argmax(1))


def activation_loss(embedding: torch.Tensor) -> torch.Tensor:
    """DAFL: minus the mean absolute embedding activation (strongly activating samples)."""
    return -embedding.abs().mean()


def information_entropy_loss(teacher_logits: torch.Tensor) -> torch.Tensor:
    """DAFL: minus the entropy of the batch-average prediction (classes balanced in each batch)."""
    mean = F.softmax(teacher_logits, dim=1).mean(0)
    return (mean * torch.log(mean + 1e-8)).sum()


def balanced_labels(batch: int, n_classes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Target labels with every class as often as the batch allows, in random order."""
    labels = torch.arange(batch) % n_classes
    return labels[torch.randperm(batch, generator=generator)]
