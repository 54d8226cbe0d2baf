"""Feature-diversity measures on teacher embeddings: how varied synthetic samples are, and how close
their distribution is to real data's.

All take embeddings (N, D) (the teacher's `e`, after statistics pooling) and, where per-class, labels (N,).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg


def per_class_cosine_diversity(embeddings: torch.Tensor, labels: torch.Tensor) -> dict[int, float]:
    """Mean pairwise cosine distance (1 - cos) within each class with at least two samples.

    0 means every sample of the class has the same embedding direction (mode collapse).
    """
    out = {}
    unit = F.normalize(embeddings.float(), dim=1)
    for cls in labels.unique().tolist():
        members = unit[labels == cls]
        n = len(members)
        if n < 2:
            continue
        sims = members @ members.t()
        off_diagonal = (sims.sum() - sims.diagonal().sum()) / (n * (n - 1))
        out[int(cls)] = float(1 - off_diagonal)
    return out


def mean_cosine_diversity(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """The per-class cosine diversity averaged over classes (the single diversity score we plot)."""
    per_class = per_class_cosine_diversity(embeddings, labels)
    return float(np.mean(list(per_class.values()))) if per_class else 0.0


def confidence_and_entropy(logits: torch.Tensor) -> dict[str, float]:
    """Mean teacher confidence (max probability) and mean predictive entropy in nats."""
    probs = F.softmax(logits.float(), dim=1)
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(1)
    return {"confidence": float(probs.max(1).values.mean()), "entropy": float(entropy.mean())}


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two embedding sets (the FID formula)."""
    a, b = a.double().cpu().numpy(), b.double().cpu().numpy()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(cov_a)) * 1e-6
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))


def precision_recall_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """k-NN manifold measures (Kynkäänniemi et al. 2019; Naeem et al. 2020).

    precision: share of generated samples inside some real sample's k-NN ball (realism);
    recall: share of real samples inside some generated sample's k-NN ball (variety);
    coverage: share of real samples whose own k-NN ball holds a generated sample.
    """
    real, fake = real.float(), fake.float()
    k = min(k, len(real) - 1, len(fake) - 1)
    if k < 1:
        raise ValueError("need at least two real and two generated samples")
    real_radius = torch.cdist(real, real).kthvalue(k + 1, dim=1).values
    fake_radius = torch.cdist(fake, fake).kthvalue(k + 1, dim=1).values
    real_fake = torch.cdist(real, fake)
    precision = (real_fake <= real_radius[:, None]).any(0).float().mean()
    recall = (real_fake.t() <= fake_radius[:, None]).any(0).float().mean()
    coverage = (real_fake.min(1).values <= real_radius).float().mean()
    return {"precision": float(precision), "recall": float(recall), "coverage": float(coverage)}


def project_2d(*embedding_sets: torch.Tensor) -> list[torch.Tensor]:
    """PCA to two dimensions, fitted on all sets together so they share one plane.

    An exact SVD, not torch.pca_lowrank: that one draws from torch's global random stream, which the
    generator's noise also draws from, so a live plot refreshed between synthesis rounds would change
    the samples (the same run gave another student with the dashboard redrawn every round or every fourth)."""
    joined = torch.cat([e.float() for e in embedding_sets])
    mean = joined.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(joined - mean, full_matrices=False)
    return [(e.float() - mean) @ vh[:2].T for e in embedding_sets]
