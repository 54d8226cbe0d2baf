"""The pipeline as a picture: teacher -> generator -> pool -> student, with each loss where it acts.

Rerun: python -m framilab.diagram figures/pipeline.png
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .plots import save_figure

# name: (x, y, width, height, fill colour, text); coordinates in a 16 x 6 box.
BOXES = {
    "real": (0.2, 3.6, 2.6, 1.6, "#e8e8e8", "real training clips\n(log-Mel)\nseen by notebook 01 only"),
    "teacher": (4.4, 3.6, 2.8, 1.6, "#cfe2f3", "teacher T\nencoder → stats pooling\n→ e → classifier"),
    "generator": (0.2, 0.4, 2.6, 1.6, "#fce5cd", "generator G(z, y)\ncodes z, labels y\n(notebook 02)"),
    "pool": (4.4, 0.4, 2.8, 1.6, "#fff2cc", "pool of synthetic\nspectrograms x̂\n+ teacher logits"),
    "student": (11.4, 2.0, 3.6, 1.6, "#d9ead3", "student S\n(notebook 03)\ntested on real test clips"),
}
# (from, to, label, label position offset)
ARROWS = [
    ("real", "teacher", "train (CE)", (0, 0.25)),
    ("generator", "pool", "x̂, every round", (0, 0.25)),
    ("pool", "student", "batches", (0.2, -0.35)),
    ("teacher", "student", "z_T, h_T, e_T", (0.2, 0.3)),
]
LOSSES = [
    (0.2, -0.75, "inversion:  w_ce·L_cls + w_bn·L_bn (BN statistics) + w_adv·L_adv (teacher vs student, masked)"
                 " + w_fic·L_fic (time-crop views, InfoNCE)", "#b45f06"),
    (11.4, 4.35, "distillation:  τ²·KL(z_T/τ ‖ z_S/τ)\n+ λ_pre·MSE(P_pre h_S, h_T) + λ_post·MSE(P_post e_S, e_T)",
     "#38761d"),
]


def _anchor(name: str, towards: str) -> tuple[float, float]:
    """The middle of the side of box `name` that faces box `towards`."""
    x, y, w, h = BOXES[name][:4]
    tx, ty, tw, th = BOXES[towards][:4]
    dx, dy = (tx + tw / 2) - (x + w / 2), (ty + th / 2) - (y + h / 2)
    if abs(dx) * 1.6 >= abs(dy):
        return (x + w, y + h / 2) if dx > 0 else (x, y + h / 2)
    return (x + w / 2, y + h) if dy > 0 else (x + w / 2, y)


def pipeline_diagram() -> Figure:
    """Boxes for the data, models and pool; arrows for what flows; the two losses where they act."""
    fig, ax = plt.subplots(figsize=(12, 5.2), layout="constrained")
    ax.set(xlim=(0, 16), ylim=(-0.9, 6))
    ax.axis("off")
    for x, y, w, h, colour, text in BOXES.values():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05,rounding_size=0.2", fc=colour, ec="#444"))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)
    for source, target, label, (ox, oy) in ARROWS:
        start, end = _anchor(source, target), _anchor(target, source)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, lw=1.4, color="#333"))
        ax.text((start[0] + end[0]) / 2 + ox, (start[1] + end[1]) / 2 + oy, label, ha="center", fontsize=8)
    teacher, generator = BOXES["teacher"], BOXES["generator"]
    ax.add_patch(FancyArrowPatch((teacher[0] + 0.5, teacher[1]), (generator[0] + generator[2] - 0.3,
                                                                  generator[1] + generator[3]),
                                 connectionstyle="arc3,rad=-0.2", arrowstyle="-|>", mutation_scale=14, lw=1.4,
                                 color="#b45f06", ls="--"))
    ax.text(1.5, 2.75, "the losses' gradients\n(T stays frozen)", fontsize=8, color="#b45f06", ha="center",
            va="center")
    for x, y, text, colour in LOSSES:
        ax.text(x, y, text, fontsize=8.5, color=colour, va="bottom")
    ax.set_title("FRAMI in framilab: invert the teacher into a pool, distil the student on it", fontsize=11)
    return fig


if __name__ == "__main__":
    save_figure(pipeline_diagram(), Path(sys.argv[1] if len(sys.argv) > 1 else "figures/pipeline.png"))
