"""Synthesizers behind one interface: `synthesize()` makes one batch into the pool, `sample(n)` draws from it.

Two kinds:
- GeneratorSynthesizer: a generator (persistent across rounds, Fast-style, or reset each round,
  CMI-style) trained for `steps` per batch on a weighted sum of loss terms. FRAMI, its ablations,
  the CMI-style and the DAFL/DFAD-style baselines are configurations of it (see methods.py).
- InputSynthesizer: DeepInversion, optimising the spectrograms themselves.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import inversion_jitter, resized_crop, spec_masks, time_crop
from ..checkpoint import TrainedModel
from ..config import check_fields
from ..features import FeatureConfig, Normalizer
from ..models.folding import fold_batchnorm
from .events import EventsWithGainGenerator, SoundEventGenerator
from .generator import CLASS_INPUTS, Generator, TimeFrequencyGenerator
from .hooks import BNStatistics
from .losses import (NEGATIVES, activation_loss, balanced_labels, decision_masked_adversarial, info_nce,
                     information_entropy_loss, one_hot_loss, smoothness)
from .pool import Pool

# A loss above this (or NaN) stops the run: the weights are off, and nothing good comes after it.
EXPLODED = 1e6
GENERATORS = ("1d", "2d", "events", "events+2d")
VIEWS = (None, "time_crop", "resized_crop")


@dataclass(frozen=True)
class SynthConfig:
    """Every weight and setting of a synthesis method; unknown names are refused."""

    kind: str = "generator"          # "generator" or "inputs" (DeepInversion)
    generator: str = "2d"            # "2d": a mel x time map; "1d": frames from a global code; "events": drawn
                                     # from tones, bursts and a floor; "events+2d": events under a bounded
                                     # 2-D gain (generator.py, events.py)
    ce: float = 1.0                  # cross-entropy to the balanced target labels
    bn: float = 0.05                 # BN-statistics matching
    adv: float = 0.5                 # decision-masked adversarial term (needs a student)
    fic: float = 0.5                 # contrastive term on two views
    views: str | None = "time_crop"  # FRAMI: "time_crop"; CMI: "resized_crop"; None: no contrastive term
    smooth: float = 0.0              # DeepInversion's smoothness prior
    one_hot: float = 0.0             # DAFL
    activation: float = 0.0          # DAFL
    info_entropy: float = 0.0        # DAFL
    crop_min: float = 0.4            # time-crop view length, as a fraction of the sample
    crop_max: float = 0.8
    view_masking: bool = True        # SpecAugment masks on the time-crop views
    jitter: bool = False             # robust inversion: every loss sees a jittered copy (augment.inversion_jitter)
    global_view: bool = False        # time_crop: pair each crop with the whole sample instead of a second crop
    temperature: float = 0.1         # InfoNCE temperature
    negatives: str = "all"           # InfoNCE negatives: "all", or only "other_class" / "same_class" samples
    bank_size: int = 1024            # memory bank of earlier samples' embeddings (negatives)
    head_dim: int = 128              # projection head output
    steps: int = 10                  # optimisation steps per batch
    warmup: int = 0                  # first rounds whose batches train the generator but stay out of the pool
    lr: float = 5e-3                 # generator (or, for inputs, the spectrograms) learning rate
    lr_z: float = 0.05               # the batch's latent codes
    reset_generator: bool = False    # CMI-style: a fresh generator every round
    conditional: bool = True         # class-conditional generator
    class_input: str = "scale"       # how it takes the class: z * embedding ("scale") or z + embedding ("shift")

    def __post_init__(self) -> None:
        if self.kind not in ("generator", "inputs"):
            raise ValueError(f"unknown kind {self.kind!r}; choose 'generator' or 'inputs'")
        if self.generator not in GENERATORS:
            raise ValueError(f"unknown generator {self.generator!r}; choose one of {sorted(GENERATORS)}")
        if self.views not in VIEWS:
            raise ValueError(f"unknown views {self.views!r}; choose one of {VIEWS}")
        if self.class_input not in CLASS_INPUTS:
            raise ValueError(f"unknown class_input {self.class_input!r}; choose one of {CLASS_INPUTS}")
        if self.negatives not in NEGATIVES:
            raise ValueError(f"unknown negatives {self.negatives!r}; choose one of {NEGATIVES}")
        if not 0 < self.crop_min <= self.crop_max <= 1:
            raise ValueError(f"need 0 < crop_min <= crop_max <= 1; got {self.crop_min}, {self.crop_max}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be 0 or more rounds, got {self.warmup}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")

    def replace(self, **changes: Any) -> "SynthConfig":
        check_fields(type(self), changes, "synthesis setting(s)")
        return dataclasses.replace(self, **changes)


def build_generator(name: str, feature_config: FeatureConfig, normalizer: Normalizer, n_classes: int,
                    conditional: bool = True, class_input: str = "scale") -> nn.Module:
    """A fresh generator `name` for a teacher's input: its mel bins (and, for the events, its front end)."""
    n_mels = feature_config.n_mels
    drawn = {"events": SoundEventGenerator, "events+2d": EventsWithGainGenerator}
    if name in drawn:
        return drawn[name](n_mels, n_classes, conditional=conditional, class_input=class_input,
                           feature_config=feature_config, normalizer=normalizer)
    return {"1d": Generator, "2d": TimeFrequencyGenerator}[name](n_mels, n_classes, conditional=conditional,
                                                                  class_input=class_input)


class ProjectionHead(nn.Module):
    """The small MLP between the teacher's embedding and the contrastive loss."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(), nn.Linear(in_dim, out_dim))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.net(e)


class Synthesizer:
    """Shared parts: the teacher (a frozen copy with batch norm folded), BN hooks, the pool, the current student."""

    def __init__(self, teacher: TrainedModel, config: SynthConfig, pool: Pool, *, batch_size: int = 64,
                 frames: int | tuple[int, int] | None = None, student: nn.Module | None = None, seed: int = 0,
                 device: str | torch.device = "cpu"):
        self.teacher = fold_batchnorm(teacher.model.to(device))
        self.feature_config, self.normalizer = teacher.feature_config, teacher.normalizer
        self.n_classes = len(teacher.classes)
        self.n_mels = teacher.feature_config.n_mels
        frames = frames or teacher.feature_config.frames()
        self.frames_range = (frames, frames) if isinstance(frames, int) else (int(frames[0]), int(frames[1]))
        if self.frames_range[0] > self.frames_range[1]:
            raise ValueError(f"frames range {frames} is empty: give (shortest, longest)")
        self.frames = self.frames_range[0]
        self.check_frames(config)
        self.pool, self.batch_size, self.device, self.student = pool, batch_size, torch.device(device), student
        self.gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.bn_stats = BNStatistics(self.teacher)
        if not self.bn_stats.layers and config.bn:
            config = config.replace(bn=0.0)
        if student is None and config.adv:
            warnings.warn("no student given: the adversarial term is switched off (adv=0)", stacklevel=2)
            config = config.replace(adv=0.0)
        self.config = config
        self.round = 0

    def next_frames(self) -> int:
        """The length of the next batch: drawn from `frames_range`, so duration varies between batches."""
        low, high = self.frames_range
        self.frames = int(torch.randint(low, high + 1, (1,), generator=self.gen)) if high > low else low
        return self.frames

    def check_frames(self, config: SynthConfig) -> None:
        """Refuse lengths the teacher cannot take, including FRAMI's shortest crop view."""
        shortest = self.frames
        if config.views == "time_crop" and config.fic:
            shortest = math.floor(config.crop_min * self.frames)
        if shortest < self.teacher.min_frames:
            fraction = config.crop_min if config.views == "time_crop" else 1
            raise ValueError(
                f"frames={self.frames} gives {shortest}-frame inputs (crop_min={config.crop_min}), but the teacher "
                f"needs at least {self.teacher.min_frames}: raise frames to "
                f"{math.ceil(self.teacher.min_frames / fraction)} or more")

    def teacher_pass(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher logits, h, e on x, and the BN-statistics loss of this pass."""
        with self.bn_stats:
            logits, h, e = self.teacher(x)
        return logits, h, e, self.bn_stats.loss().to(x.device)

    def adversarial(self, x: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """The adversarial term against the student in eval mode; the gradient flows to x alone (the student's
        own weight gradients would only be thrown away by its next update)."""
        was_training = self.student.training
        trainable = [p for p in self.student.parameters() if p.requires_grad]
        self.student.eval()
        for p in trainable:
            p.requires_grad_(False)
        try:
            student_logits = self.student(x)[0]
        finally:
            self.student.train(was_training)
            for p in trainable:
                p.requires_grad_(True)
        return decision_masked_adversarial(teacher_logits, student_logits)

    def check_loss(self, total: torch.Tensor, terms: dict[str, float]) -> None:
        if not torch.isfinite(total) or total.abs() > EXPLODED:
            raise FloatingPointError(
                f"synthesis loss became {total.item():.3g} in round {self.round + 1} (terms: "
                + ", ".join(f"{k}={v:.3g}" for k, v in terms.items())
                + f"); stopped. The pool written so far ({len(self.pool)} samples in {self.pool.root}) is kept. "
                "Lower the learning rate or the weight of the exploding term")

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.pool.sample(n, self.gen, self.device)

    def synthesize(self) -> dict[str, float]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"round": self.round, "rng": self.gen.get_state(), "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.round = state["round"]
        self.gen.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])


class GeneratorSynthesizer(Synthesizer):
    """Generator-based inversion: FRAMI, its ablations, CMI-style and DAFL/DFAD-style."""

    def __init__(self, teacher: TrainedModel, config: SynthConfig, pool: Pool, **kwargs: Any):
        super().__init__(teacher, config, pool, **kwargs)
        self.generator = self._new_generator()
        self.head = ProjectionHead(self.teacher.embed_dim, self.config.head_dim).to(self.device)
        self.optimizer = self._new_optimizer()
        self.bank = torch.zeros(0, self.teacher.embed_dim, device=self.device)
        self.bank_labels = torch.zeros(0, dtype=torch.long, device=self.device)

    def _new_generator(self) -> nn.Module:
        return build_generator(self.config.generator, self.feature_config, self.normalizer, self.n_classes,
                               self.config.conditional, self.config.class_input).to(self.device)

    def _new_optimizer(self) -> torch.optim.Optimizer:
        params = list(self.generator.parameters()) + list(self.head.parameters())
        return torch.optim.Adam(params, lr=self.config.lr, betas=(0.5, 0.999))

    def views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The views of each sample: FRAMI's time crops of different lengths and positions (one crop
        with `global_view`, whose partner is the whole sample), or CMI's resized crops."""
        cfg = self.config
        if cfg.views == "resized_crop":
            return [resized_crop(x, generator=self.gen), resized_crop(x, generator=self.gen)]
        out = []
        for _ in range(1 if cfg.global_view else 2):
            frac = float(torch.empty(1).uniform_(cfg.crop_min, cfg.crop_max, generator=self.gen))
            view = time_crop(x, max(self.teacher.min_frames, int(frac * x.shape[-1])), self.gen)
            if cfg.view_masking:
                view = spec_masks(view, 1, max(1, self.n_mels // 8), 1, max(1, view.shape[-1] // 8), self.gen)
            out.append(view)
        return out

    def losses(self, x: torch.Tensor,
               targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float], torch.Tensor, torch.Tensor]:
        """The weighted total, each term's value, the teacher logits, and the embeddings for the bank.

        `targets` also class the samples for per-class negatives (an unconditional generator's by the teacher)."""
        cfg = self.config
        logits, _, e, bn = self.teacher_pass(x)
        terms: dict[str, torch.Tensor] = {}
        if cfg.ce:
            terms["ce"] = F.cross_entropy(logits, targets)
        if cfg.bn:
            terms["bn"] = bn
        if cfg.adv:
            terms["adv"] = self.adversarial(x, logits)
        if cfg.one_hot:
            terms["one_hot"] = one_hot_loss(logits)
        if cfg.activation:
            terms["activation"] = activation_loss(e)
        if cfg.info_entropy:
            terms["info_entropy"] = information_entropy_loss(logits)
        bank_entries = e.detach()
        if cfg.fic and cfg.views:
            embeddings = [self.teacher(view)[2] for view in self.views(x)]
            if len(embeddings) == 1:
                embeddings.insert(0, e)
            negatives = self.head(self.bank) if len(self.bank) else None
            terms["fic"] = info_nce(self.head(embeddings[0]), self.head(embeddings[1]), negatives, cfg.temperature,
                                    cfg.negatives, self.classes(targets, logits), self.bank_labels)
            bank_entries = embeddings[0].detach()
        weights = {"ce": cfg.ce, "bn": cfg.bn, "adv": cfg.adv, "one_hot": cfg.one_hot, "activation": cfg.activation,
                   "info_entropy": cfg.info_entropy, "fic": cfg.fic}
        total = sum(weights[k] * v for k, v in terms.items())
        return total, {k: v.item() for k, v in terms.items()}, logits, bank_entries

    def classes(self, targets: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The samples' classes: their targets, or for an unconditional generator (asked for no class) the teacher's."""
        return targets if self.config.conditional else logits.argmax(1)

    def synthesize(self) -> dict[str, float]:
        """One round: `steps` updates of the generator (and this batch's codes), then the batch goes to the pool."""
        cfg = self.config
        if cfg.reset_generator and self.round > 0:
            self.generator = self._new_generator()
            self.optimizer = self._new_optimizer()
        self.generator.train()
        frames = self.next_frames()
        z = self.generator.sample_z(self.batch_size, self.gen, self.device).requires_grad_(True)
        targets = balanced_labels(self.batch_size, self.n_classes, self.gen).to(self.device)
        z_optimizer = torch.optim.Adam([z], lr=cfg.lr_z, betas=(0.5, 0.999))
        record: dict[str, float] = {}
        for _ in range(cfg.steps):
            x = self.generator(z, frames, targets)
            if cfg.jitter:
                x = inversion_jitter(x, self.gen, min_frames=self.teacher.min_frames)
            total, terms, logits, bank_entries = self.losses(x, targets)
            self.check_loss(total, terms)
            self.optimizer.zero_grad(set_to_none=True)
            z_optimizer.zero_grad(set_to_none=True)
            total.backward()
            self.optimizer.step()
            z_optimizer.step()
            record = {"total": total.item(), **terms}
        with torch.no_grad():
            self.generator.eval()
            x = self.generator(z, frames, targets)
            logits = self.teacher(x)[0]
        self.bank = torch.cat([bank_entries, self.bank])[: cfg.bank_size]
        targets = self.classes(targets, logits)
        self.bank_labels = torch.cat([targets, self.bank_labels])[: cfg.bank_size]
        if self.round >= cfg.warmup:
            self.pool.add(x, targets, logits, self.round)
        self.round += 1
        record["teacher_agreement"] = float((logits.argmax(1) == targets).float().mean())
        return record

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generator": self.generator.state_dict(), "head": self.head.state_dict(),
                "optimizer": self.optimizer.state_dict(), "bank": self.bank.cpu(), "bank_labels": self.bank_labels.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generator.load_state_dict(state["generator"])
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.bank = state["bank"].to(self.device)
        # A checkpoint without labels was made with "all" negatives, which never read them.
        self.bank_labels = state.get("bank_labels", torch.full((len(self.bank),), -1)).to(self.device)


class InputSynthesizer(Synthesizer):
    """DeepInversion: optimise a batch of spectrograms directly (CE + BN + smoothness), `steps` times."""

    def synthesize(self) -> dict[str, float]:
        cfg = self.config
        x = torch.randn(self.batch_size, self.n_mels, self.next_frames(), generator=self.gen).to(self.device)
        x.requires_grad_(True)
        targets = balanced_labels(self.batch_size, self.n_classes, self.gen).to(self.device)
        optimizer = torch.optim.Adam([x], lr=cfg.lr, betas=(0.5, 0.9))
        record: dict[str, float] = {}
        for _ in range(cfg.steps):
            logits, _, _, bn = self.teacher_pass(x)
            terms = {"ce": F.cross_entropy(logits, targets), "bn": bn, "smooth": smoothness(x)}
            if cfg.adv:
                terms["adv"] = self.adversarial(x, logits)
            weights = {"ce": cfg.ce, "bn": cfg.bn, "smooth": cfg.smooth, "adv": cfg.adv}
            total = sum(weights[k] * v for k, v in terms.items())
            values = {k: v.item() for k, v in terms.items()}
            self.check_loss(total, values)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            record = {"total": total.item(), **values}
        with torch.no_grad():
            x = x.detach().clamp(-4, 4)
            logits = self.teacher(x)[0]
        self.pool.add(x, targets, logits, self.round)
        self.round += 1
        record["teacher_agreement"] = float((logits.argmax(1) == targets).float().mean())
        return record
