"""Figures people look at rather than read: spectrogram grids, learning curves, confusion matrices."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .features import FeatureConfig


def show_spectrogram(ax, spec: torch.Tensor, config: FeatureConfig, title: str = "", colorbar: bool = False):
    """One log-Mel spectrogram (n_mels, T) with time in seconds on x and mel bin on y."""
    seconds = spec.shape[-1] / config.frames_per_second
    image = ax.imshow(spec.detach().cpu().numpy(), origin="lower", aspect="auto", cmap="magma",
                      extent=(0, seconds, 0, spec.shape[-2]), interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("s", fontsize=8)
    ax.set_ylabel("mel bin", fontsize=8)
    ax.tick_params(labelsize=7)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046)
    return image


def class_examples(dataset, per_class: int = 1, columns: int = 5) -> Figure:
    """A grid with the first `per_class` examples of every class of `dataset`."""
    picks = []
    for cls, name in enumerate(dataset.classes):
        idx = [i for i, t in enumerate(dataset.targets) if t == cls][:per_class]
        picks += [(i, name) for i in idx]
    rows = -(-len(picks) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.1 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(picks):]:
        ax.axis("off")
    for ax, (i, name) in zip(axes.flat, picks):
        show_spectrogram(ax, dataset[i][0], dataset.config, name)
    fig.suptitle(f"{dataset.name}: one log-Mel example per class", fontsize=11)
    return fig


def learning_curves(history: Sequence[dict[str, Any]]) -> Figure:
    """Training loss and train/test accuracy per epoch."""
    epochs = [r["epoch"] for r in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    loss_ax.plot(epochs, [r["train_loss"] for r in history], marker="o")
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="loss")
    acc_ax.plot(epochs, [r["train_accuracy"] for r in history], marker="o", label="train (augmented)")
    acc_ax.plot(epochs, [r["test_accuracy"] for r in history], marker="o", label="test")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    acc_ax.legend()
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
    return fig


def confusion_matrix(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str = "") -> Figure:
    """Row-normalised confusion matrix (rows: true class) with counts written in the cells."""
    counts = np.asarray(confusion)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = 1.2 + 0.45 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size), layout="constrained")
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for (r, c), n in np.ndenumerate(counts):
        if n:
            ax.text(c, r, str(n), ha="center", va="center", fontsize=7, color="white" if rates[r, c] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def accuracy_bars(accuracies: dict[str, float], title: str = "") -> Figure:
    """Horizontal bars of test accuracy, one per model or method, with the value written at the end."""
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(accuracies) + 1.2), layout="constrained")
    names = list(accuracies)
    values = [accuracies[n] for n in names]
    ax.barh(names, values, color=plt.get_cmap("tab10")(np.arange(len(names)) % 10))
    for i, v in enumerate(values):
        ax.text(min(v, 1.0) + 0.01, i, f"{v:.3f}", va="center", fontsize=9)
    ax.set(xlim=(0, 1.12), xlabel="test accuracy", title=title)
    ax.invert_yaxis()
    return fig


def save_figure(fig: Figure, *paths: str | Path, dpi: int = 110) -> None:
    """Save `fig` as PNG to each path (folders made as needed)."""
    for path in paths:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)


def real_vs_synthetic(config: FeatureConfig, classes: Sequence[str], real: tuple[torch.Tensor, torch.Tensor],
                      sources: dict[str, tuple[torch.Tensor, torch.Tensor]], per_class: int = 1,
                      title: str = "") -> Figure:
    """Real clips beside synthetic samples of the same class: a row per class, `per_class` columns per source
    ("real" first), all in dB (denormalised spectrograms) on one colour scale, mel axis in Hz, time in s.

    `real` and each source are (spectrograms in dB (N, n_mels, T), labels (N,)); a source's last samples of
    each class are shown (the end of its pool)."""
    from librosa.display import specshow

    columns = {"real": real, **sources}
    vmax = float(real[0].max())
    vmin = vmax - config.top_db
    width = len(columns) * per_class
    fig, axes = plt.subplots(len(classes), width, figsize=(1.7 * width + 1.2, 1.35 * len(classes) + 0.8),
                             squeeze=False, layout="constrained", sharex=False, sharey=True)
    image = None
    for col, (name, (x, y)) in enumerate(columns.items()):
        for row, cls in enumerate(classes):
            members = (y == row).nonzero().flatten()
            picks = members[:per_class] if name == "real" else members[-per_class:]
            for k in range(per_class):
                ax = axes[row, col * per_class + k]
                if k >= len(picks):
                    ax.axis("off")
                    continue
                image = specshow(x[picks[k]].detach().cpu().numpy(), sr=config.sample_rate,
                                 hop_length=config.hop_length, x_axis="time", y_axis="mel", fmin=config.f_min,
                                 fmax=config.f_max or config.sample_rate / 2, htk=True, cmap="magma", vmin=vmin,
                                 vmax=vmax, ax=ax)
                ax.tick_params(labelsize=6)
                ax.set(xlabel="", ylabel="")
                if row == 0 and k == 0:
                    ax.set_title(name, fontsize=8, loc="left")
                if col == 0 and k == 0:
                    ax.set_ylabel(f"{cls}\nHz", fontsize=7)
                if row == len(classes) - 1:
                    ax.set_xlabel("s", fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=axes, fraction=0.02, label="dB", format="%+.0f")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
