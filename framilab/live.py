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
from .data import AudioDataset
from .diversity import project_2d
from .features import mel_to_audio
from .inversion import embed
from .plots import db_range, show_spectrogram, spectrogram_table
from .synthesis import Pool

LOSS_TERMS = ("ce", "bn", "adv", "fic", "smooth", "one_hot", "activation", "info_entropy")
DISTILL_TERMS = ("kd", "reuse_pre", "reuse_post")


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
    """A row per class with its latest `per_class` samples (normalised), in dB on one colour scale."""
    return spectrogram_table(teacher.feature_config, teacher.classes,
                             {title: (teacher.normalizer.denormalize(x.cpu()), targets.cpu())}, per_class)


def variant_gallery(results: dict[str, dict[str, Any]], teacher: TrainedModel, per_class: int = 2) -> Figure:
    """`per_class` columns per variant (its last samples of each class), one row per class, one colour scale:
    what each loss term changes."""
    sources = {name: Pool(metrics["pool_dir"]).spectrograms(teacher.normalizer) for name, metrics in results.items()}
    return spectrogram_table(teacher.feature_config, teacher.classes, sources, per_class)


def loss_curves(history: Sequence[dict[str, Any]], terms: Sequence[str] = LOSS_TERMS) -> Figure:
    """Each loss term of `terms` in the history (last step of each round) over rounds, one small axis per term;
    the synthesis terms by default, distillation's with DISTILL_TERMS."""
    terms = [t for t in terms if any(t in r for r in history)]
    fig, axes = plt.subplots(1, max(1, len(terms)), figsize=(2.6 * max(1, len(terms)), 2.4),
                             squeeze=False, layout="constrained")
    for ax, term in zip(axes[0], terms):
        ax.plot([r["round"] for r in history if term in r], [r[term] for r in history if term in r], marker=".")
        ax.set_title(term, fontsize=9)
        ax.set_xlabel("round", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("loss (last step of the round)", fontsize=8)
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
    fig, (scatter, agree, spread) = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained",
                                                 gridspec_kw={"width_ratios": [1.5, 1, 1]})
    cmap = plt.get_cmap("tab10")
    for cls, name in enumerate(teacher.classes):
        mine = targets == cls
        scatter.scatter(points[0][mine, 0], points[0][mine, 1], s=8, color=cmap(cls % 10), label=name)
        if real is not None:
            theirs = real[1][:max_points] == cls
            scatter.scatter(points[1][theirs, 0], points[1][theirs, 1], s=14, marker="x", color=cmap(cls % 10),
                            alpha=0.5)
    scatter.set(xlabel="principal component 1", ylabel="principal component 2",
                title="teacher embeddings e (PCA): dots synthetic" + (", x real" if real is not None else ""))
    scatter.title.set_fontsize(9)
    scatter.legend(fontsize=6, markerscale=1.5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    measured = [r for r in history if "diversity" in r]
    rounds = [r["round"] for r in measured]
    agree.plot(rounds, [r["teacher_accuracy_on_pool"] for r in measured], marker=".", label="teacher")
    judged = [r for r in measured if "transfer_accuracy" in r]
    if judged:
        agree.plot([r["round"] for r in judged], [r["transfer_accuracy"] for r in judged], marker=".",
                   label="judges (transfer)")
    agree.set(xlabel="round", ylabel="share labelled as the target class", ylim=(0, 1.02),
              title="who reads the recent samples as their class")
    spread.plot(rounds, [r["diversity"] for r in measured], marker=".", color="tab:green")
    spread.set(xlabel="round", ylabel="mean within-class cosine distance", ylim=(0, None),
               title="diversity of the recent samples")
    for ax in (agree, spread):
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    agree.legend(fontsize=8, loc="lower right")
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


def sample_browser(pool: Pool, teacher: TrainedModel, real: AudioDataset | None = None) -> widgets.VBox:
    """Pick a class and a pool sample; see its spectrogram and hear it through Griffin-Lim. With `real` (a real
    split in the teacher's features), a real clip of the same class beside it on one dB scale, played as
    recorded and through the same Griffin-Lim, so the Griffin-Lim tint is heard on both."""
    x, targets, logits = pool.tensors()
    config = teacher.feature_config
    choose = widgets.Dropdown(options=[(n, i) for i, n in enumerate(teacher.classes)], value=0, description="class")
    index = widgets.IntSlider(value=0, min=0, max=0, description="sample")
    real_index = widgets.IntSlider(value=0, min=0, max=0, description="real clip",
                                   layout={"display": None if real is not None else "none"})
    image = widgets.Image(format="png")
    info = widgets.HTML()
    audio = widgets.Audio(format="wav", autoplay=True, loop=False, layout={"display": "none"})
    buttons = {"synthetic (Griffin-Lim)": widgets.Button(description="synthetic (Griffin-Lim)", icon="play")}
    if real is not None:
        buttons["real (recorded)"] = widgets.Button(description="real (recorded)", icon="play")
        buttons["real (Griffin-Lim)"] = widgets.Button(description="real (Griffin-Lim)", icon="play")

    def members() -> list[int]:
        return (targets == choose.value).nonzero().flatten().tolist()

    def real_members() -> list[int]:
        return [] if real is None else [i for i, t in enumerate(real.targets) if t == choose.value]

    def picked() -> tuple[int | None, int | None]:
        idx, real_idx = members(), real_members()
        return (idx[min(index.value, len(idx) - 1)] if idx else None,
                real_idx[min(real_index.value, len(real_idx) - 1)] if real_idx else None)

    def render(*_: Any) -> None:
        index.max, real_index.max = max(0, len(members()) - 1), max(0, len(real_members()) - 1)
        i, r = picked()
        if i is None:
            info.value = "no samples of this class yet"
            return
        panels = [("synthetic", teacher.normalizer.denormalize(x[i]))]
        if r is not None:
            panels.insert(0, (f"real clip {r}", real[r][0]))
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 0.8, 2.6), layout="constrained",
                                 squeeze=False)
        limits = db_range(config, panels[0][1])
        for ax, (title, spec) in zip(axes[0], panels):
            shown = show_spectrogram(ax, spec, config, title, limits=limits)
        fig.colorbar(shown, ax=axes, fraction=0.03, label="dB", format="%+.0f")
        image.value = figure_png(fig, dpi=90)
        probs = torch.softmax(logits[i], 0)
        info.value = (f"pool sample {i}: target <b>{teacher.classes[targets[i]]}</b>, teacher says "
                      f"<b>{teacher.classes[int(probs.argmax())]}</b> ({float(probs.max()):.2f})")

    def listen(button: widgets.Button) -> None:
        i, r = picked()
        if button.description.startswith("synthetic") and i is not None:
            wave = mel_to_audio(teacher.normalizer.denormalize(x[i]), config)
        elif r is not None and "recorded" in button.description:
            wave = real.waveform(r)
        elif r is not None:
            wave = mel_to_audio(real[r][0], config)
        else:
            return
        audio.layout.display = None
        audio.value = wav_bytes(wave, config.sample_rate)

    for control in (choose, index, real_index):
        control.observe(render, names="value")
    for button in buttons.values():
        button.on_click(listen)
    render()
    return widgets.VBox([widgets.HBox([choose, index, real_index]), widgets.HBox(list(buttons.values())), info,
                         image, audio])
