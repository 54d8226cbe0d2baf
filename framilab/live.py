"""Live plots and widgets for the notebooks.

A live plot is an ipywidgets.Output whose `outputs` are replaced with one PNG on every update,
rather than `clear_output` + `display`: JupyterLab shows every update, papermill keeps the final
state in the executed notebook, and nbval compares one stable output (see the toolchain notes).
"""
from __future__ import annotations

import base64
import io
from typing import Any, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
import torch
from matplotlib.figure import Figure

from .checkpoint import TrainedModel
from .diversity import project_2d
from .features import mel_to_audio
from .inversion import embed
from .plots import show_spectrogram
from .synthesis import Pool

LOSS_TERMS = ("ce", "bn", "adv", "fic", "smooth", "one_hot", "activation", "info_entropy")


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


class LivePlot:
    """An Output widget showing one figure, replaced in place by `show(fig)`."""

    def __init__(self, title: str = ""):
        self.widget = widgets.Output(layout={"border": "1px solid #ddd"})
        self.title = title

    def show(self, fig: Figure) -> None:
        data = base64.b64encode(figure_png(fig)).decode()
        self.widget.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {"image/png": data, "text/plain": f"<{self.title or 'figure'}>"}},)


def spectrogram_grid(x: torch.Tensor, targets: torch.Tensor, teacher: TrainedModel, per_class: int = 4,
                     title: str = "") -> Figure:
    """A row per class with its latest `per_class` samples, in dB (denormalised)."""
    classes = teacher.classes
    fig, axes = plt.subplots(len(classes), per_class, figsize=(1.9 * per_class, 1.05 * len(classes)),
                             squeeze=False, layout="constrained")
    specs = teacher.normalizer.denormalize(x.cpu())
    for row, name in enumerate(classes):
        idx = (targets == row).nonzero().flatten().tolist()[-per_class:]
        for col in range(per_class):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(idx):
                ax.imshow(specs[idx[col]].numpy(), origin="lower", aspect="auto", cmap="magma", interpolation="nearest")
            if col == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def variant_gallery(results: dict[str, dict[str, Any]], teacher: TrainedModel) -> Figure:
    """One column per variant (its last sample of each class), one row per class: what each loss term changes."""
    names = list(results)
    classes = teacher.classes
    fig, axes = plt.subplots(len(classes), len(names), figsize=(2.3 * len(names), 1.05 * len(classes)),
                             squeeze=False, layout="constrained")
    for col, name in enumerate(names):
        x, targets, _ = Pool(results[name]["pool_dir"]).tensors()
        specs = teacher.normalizer.denormalize(x)
        for row, cls_name in enumerate(classes):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            idx = (targets == row).nonzero().flatten()
            if len(idx):
                ax.imshow(specs[idx[-1]].numpy(), origin="lower", aspect="auto", cmap="magma", interpolation="nearest")
            if col == 0:
                ax.set_ylabel(cls_name, rotation=0, ha="right", va="center", fontsize=8)
            if row == 0:
                ax.set_title(name, fontsize=9)
    return fig


def loss_curves(history: Sequence[dict[str, Any]]) -> Figure:
    """Each loss term (last step of each round) over rounds, one small axis per term."""
    terms = [t for t in LOSS_TERMS if any(t in r for r in history)]
    fig, axes = plt.subplots(1, max(1, len(terms)), figsize=(2.6 * max(1, len(terms)), 2.4),
                             squeeze=False, layout="constrained")
    for ax, term in zip(axes[0], terms):
        ax.plot([r["round"] for r in history if term in r], [r[term] for r in history if term in r], marker=".")
        ax.set_title(term, fontsize=9)
        ax.set_xlabel("round", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    return fig


class EmbeddingCache:
    """The teacher's embeddings of a growing pool's latest samples and of one real set, kept between
    live refreshes: each refresh runs the teacher only on the samples added since the previous one."""

    def __init__(self, teacher: TrainedModel):
        self.teacher = teacher
        self.first = 0  # pool index of the first cached embedding
        self.pool = torch.zeros(0, teacher.model.embed_dim)
        self.real: torch.Tensor | None = None

    def latest(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """Embeddings of x[-n:], where x is the whole pool; starts over if the pool shrank (a resumed run)."""
        first, end = max(0, len(x) - n), self.first + len(self.pool)
        if not self.first <= first <= end <= len(x):
            self.first, self.pool = first, embed(self.teacher, x[first:])[1]
        elif end < len(x):
            self.first, self.pool = first, torch.cat([self.pool[first - self.first:], embed(self.teacher, x[end:])[1]])
        return self.pool

    def of_real(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings of the real set, computed on the first call (one real set per cache)."""
        if self.real is None:
            self.real = embed(self.teacher, x)[1]
        return self.real


def diversity_figure(teacher: TrainedModel, pool: Pool, history: Sequence[dict[str, Any]],
                     real: tuple[torch.Tensor, torch.Tensor] | None = None, max_points: int = 512,
                     cache: EmbeddingCache | None = None) -> Figure:
    """Left: 2-D PCA of pool embeddings coloured by class (real embeddings as crosses). Right: diversity over rounds.

    A live dashboard passes its `cache`, so a refresh embeds only the newest pool samples."""
    cache = cache or EmbeddingCache(teacher)
    x, targets, _ = pool.tensors()
    targets = targets[-max_points:]
    sets = [cache.latest(x, max_points)]
    if real is not None:
        sets.append(cache.of_real(real[0][:max_points]))
    points = project_2d(*sets)
    fig, (scatter, curve) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
    cmap = plt.get_cmap("tab10")
    for cls, name in enumerate(teacher.classes):
        mine = targets == cls
        scatter.scatter(points[0][mine, 0], points[0][mine, 1], s=8, color=cmap(cls % 10), label=name)
        if real is not None:
            theirs = real[1][:max_points] == cls
            scatter.scatter(points[1][theirs, 0], points[1][theirs, 1], s=14, marker="x", color=cmap(cls % 10),
                            alpha=0.5)
    scatter.set_title("teacher embeddings (PCA): dots synthetic" + (", x real" if real is not None else ""), fontsize=9)
    scatter.legend(fontsize=6, ncol=2, markerscale=1.5)
    measured = [r for r in history if "diversity" in r]
    curve.plot([r["round"] for r in measured], [r["diversity"] for r in measured], marker=".", label="diversity")
    curve.plot([r["round"] for r in measured], [r["teacher_accuracy_on_pool"] for r in measured], marker=".",
               label="teacher agrees with target")
    if any("transfer_accuracy" in r for r in measured):
        judged = [r for r in measured if "transfer_accuracy" in r]
        curve.plot([r["round"] for r in judged], [r["transfer_accuracy"] for r in judged], marker=".",
                   label="judges agree with target (transfer)")
    curve.set(xlabel="round", ylim=(0, 1.02), title="recent pool samples")
    curve.legend(fontsize=8)
    curve.grid(alpha=0.3)
    return fig


class InversionDashboard:
    """Spectrogram grid, loss curves and diversity plots that refresh while synthesis runs.

    Pass `dashboard.update` as `on_round` to run_inversion; show `dashboard.widget`. The plots redraw
    every `every` rounds and at round `rounds` (the last), so a sparse redraw still ends on the final pool;
    each redraw costs a few seconds of matplotlib.
    """

    def __init__(self, teacher: TrainedModel, real: tuple[torch.Tensor, torch.Tensor] | None = None,
                 every: int = 1, per_class: int = 4, rounds: int | None = None):
        self.teacher, self.real, self.every, self.per_class, self.rounds = teacher, real, every, per_class, rounds
        self.history: list[dict[str, Any]] = []
        self.grid, self.losses, self.diversity = LivePlot("spectrograms"), LivePlot("losses"), LivePlot("diversity")
        self.status = widgets.HTML("waiting for the first round")
        self.embeddings = EmbeddingCache(teacher)
        self.widget = widgets.VBox([self.status, self.grid.widget, self.losses.widget, self.diversity.widget])

    def update(self, record: dict[str, Any], synth: Any) -> None:
        self.history.append(record)
        if "diversity" not in record:
            self.status.value = f"round {record['round']}: warming the generator up (its batches stay out of the pool)"
            return
        transfer = f", judges agree {record['transfer_accuracy']:.2f}" if "transfer_accuracy" in record else ""
        self.status.value = (f"round {record['round']}: pool {record['pool_size']} samples, teacher agrees "
                             f"{record['teacher_agreement']:.2f}{transfer}, diversity {record['diversity']:.3f}")
        if record["round"] % self.every and record["round"] != self.rounds:
            return
        self.refresh(synth.pool)

    def refresh(self, pool: Pool) -> None:
        x, targets, _ = pool.tensors()
        recent = len(self.teacher.classes) * self.per_class * 3
        self.grid.show(spectrogram_grid(x[-recent:], targets[-recent:], self.teacher, self.per_class,
                                        f"latest samples, round {len(self.history)}"))
        self.losses.show(loss_curves(self.history))
        self.diversity.show(diversity_figure(self.teacher, pool, self.history, self.real, cache=self.embeddings))


def wav_bytes(wave: torch.Tensor, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    peak = float(wave.abs().max()) or 1.0
    sf.write(buffer, (0.9 * wave / peak).numpy().astype(np.float32), sample_rate, format="WAV")
    return buffer.getvalue()


def sample_browser(pool: Pool, teacher: TrainedModel) -> widgets.VBox:
    """Pick a class and a sample; see its spectrogram; press play to hear it through Griffin-Lim."""
    x, targets, logits = pool.tensors()
    config = teacher.feature_config
    choose = widgets.Dropdown(options=[(n, i) for i, n in enumerate(teacher.classes)], value=0, description="class")
    index = widgets.IntSlider(value=0, min=0, max=0, description="sample")
    image = widgets.Image(format="png")
    info = widgets.HTML()
    play = widgets.Button(description="play (Griffin-Lim)", icon="play")
    audio = widgets.Audio(format="wav", autoplay=True, loop=False, layout={"display": "none"})

    def members() -> list[int]:
        return (targets == choose.value).nonzero().flatten().tolist()

    def render(*_: Any) -> None:
        idx = members()
        index.max = max(0, len(idx) - 1)
        if not idx:
            info.value = "no samples of this class yet"
            return
        i = idx[min(index.value, len(idx) - 1)]
        fig, ax = plt.subplots(figsize=(5, 2.6), layout="constrained")
        show_spectrogram(ax, teacher.normalizer.denormalize(x[i]), config, colorbar=True)
        image.value = figure_png(fig, dpi=90)
        probs = torch.softmax(logits[i], 0)
        info.value = (f"pool sample {i}: target <b>{teacher.classes[targets[i]]}</b>, teacher says "
                      f"<b>{teacher.classes[int(probs.argmax())]}</b> ({float(probs.max()):.2f})")

    def listen(_: Any) -> None:
        i = members()[min(index.value, len(members()) - 1)]
        wave = mel_to_audio(teacher.normalizer.denormalize(x[i]), config)
        audio.layout.display = None
        audio.value = wav_bytes(wave, config.sample_rate)

    choose.observe(render, names="value")
    index.observe(render, names="value")
    play.on_click(listen)
    render()
    return widgets.VBox([widgets.HBox([choose, index, play]), info, image, audio])
