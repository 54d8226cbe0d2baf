"""Figures people look at rather than read: spectrogram grids, learning curves, confusion matrices."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .features import FeatureConfig


def db_range(config: FeatureConfig, *specs: torch.Tensor) -> tuple[float, float]:
    """One colour scale for a figure: from the loudest bin shown down by the features' dynamic range (top_db)."""
    vmax = max(float(x.max()) for x in specs if x.numel())
    return vmax - config.top_db, vmax


def show_spectrogram(ax, spec: torch.Tensor, config: FeatureConfig, title: str = "", colorbar: bool = False,
                     limits: tuple[float, float] | None = None):
    """One log-Mel spectrogram (n_mels, T) in dB: time in s, frequency in Hz on a mel axis (librosa's
    specshow); `limits` (vmin, vmax) shares one colour scale between panels."""
    from librosa.display import specshow

    vmin, vmax = limits or db_range(config, spec)
    image = specshow(spec.detach().cpu().numpy(), sr=config.sample_rate, hop_length=config.hop_length,
                     x_axis="time", y_axis="mel", fmin=config.f_min, fmax=config.f_max or config.sample_rate / 2,
                     htk=True, cmap="magma", vmin=vmin, vmax=vmax, ax=ax)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("frequency (Hz)", fontsize=8)
    ax.tick_params(labelsize=7)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, label="dB", format="%+.0f")
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
    limits = db_range(dataset.config, *(dataset[i][0] for i, _ in picks))
    for ax, (i, name) in zip(axes.flat, picks):
        image = show_spectrogram(ax, dataset[i][0], dataset.config, name, limits=limits)
    fig.colorbar(image, ax=axes, fraction=0.02, label="dB", format="%+.0f")
    fig.suptitle(f"{dataset.name}: one log-Mel example per class (one colour scale)", fontsize=11)
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
    return confusion_matrices({title: confusion}, classes)


def confusion_matrices(confusions: dict[str, Sequence[Sequence[int]]], classes: Sequence[str]) -> Figure:
    """Row-normalised confusion matrices side by side on one colour scale (share of the true class), one per
    model (title: matrix), counts written in the cells: where two models go wrong in the same way."""
    size = 1.2 + 0.45 * len(classes)
    fig, axes = plt.subplots(1, len(confusions), figsize=(size * len(confusions) + 1, size), layout="constrained",
                             squeeze=False, sharey=True)
    for ax, (title, confusion) in zip(axes[0], confusions.items()):
        counts = np.asarray(confusion)
        rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set(xlabel="predicted class", title=title)
        for (r, c), n in np.ndenumerate(counts):
            if n:
                ax.text(c, r, str(n), ha="center", va="center", fontsize=7,
                        color="white" if rates[r, c] > 0.5 else "black")
    axes[0][0].set_ylabel("true class")
    fig.colorbar(image, ax=axes, fraction=0.046 / len(confusions), label="share of the true class")
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
    """Save `fig` as a 256-colour PNG to each path (folders made as needed). A figure's colours are one colour
    map, its text and a few line colours, so a palette keeps it as it looks at about half the bytes of RGBA,
    which matters for the spectrogram grids committed under figures/."""
    from PIL import Image

    rendered = io.BytesIO()
    fig.savefig(rendered, format="png", dpi=dpi)
    image = Image.open(rendered).convert("RGB").quantize(256)
    for path in paths:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, optimize=True)


def spectrogram_table(config: FeatureConfig, classes: Sequence[str], sources: dict[str, tuple[torch.Tensor, torch.Tensor]],
                      per_class: int = 1, title: str = "", first: Sequence[str] = ("real",)) -> Figure:
    """A row per class and `per_class` columns per source, every panel in dB on one colour scale (a real
    source's, where there is one), frequency in Hz on a mel axis, time in s, one dB colour bar.

    Each source is (spectrograms in dB (N, n_mels, T), labels (N,)); the sources named in `first` show each
    class's first samples, the others its last (the end of a pool)."""
    anchor = [sources[n][0] for n in first if n in sources] or [x for x, _ in sources.values()]
    limits = db_range(config, *anchor)
    width = len(sources) * per_class
    fig, axes = plt.subplots(len(classes), width, figsize=(1.7 * width + 1.2, 1.35 * len(classes) + 0.8),
                             squeeze=False, layout="constrained", sharey=True)
    image = None
    for col, (name, (x, y)) in enumerate(sources.items()):
        for row, cls in enumerate(classes):
            members = (y == row).nonzero().flatten()
            picks = members[:per_class] if name in first else members[-per_class:]
            for k in range(per_class):
                ax = axes[row, col * per_class + k]
                if k >= len(picks):
                    ax.axis("off")
                    continue
                image = show_spectrogram(ax, x[picks[k]], config, limits=limits)
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


def real_vs_synthetic(config: FeatureConfig, classes: Sequence[str], real: tuple[torch.Tensor, torch.Tensor],
                      sources: dict[str, tuple[torch.Tensor, torch.Tensor]], per_class: int = 1,
                      title: str = "") -> Figure:
    """Real clips (first column group, on whose loudest bin the colour scale is set) beside synthetic samples
    of the same class (spectrogram_table)."""
    return spectrogram_table(config, classes, {"real": real, **sources}, per_class, title)
