"""Supervised training of any framilab model on any framilab data set, resumable to the epoch.

Used for the teacher and for the "student from real data" reference. Every random draw
(shuffling, crops, masks, mixup) comes from one torch.Generator whose state is checkpointed
with the model, optimiser and scheduler, so a resumed run ends with the same numbers as an
uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .augment import spec_masks, time_crop
from .checkpoint import model_payload, save_checkpoint, start_or_resume
from .config import check_fields
from .data import AudioDataset
from .features import Normalizer
from .layout import checkpoint_name, metrics_name, model_name
from .models import build_model, model_cost
from .models.folding import fold_batchnorm
from .provenance import code_version
from .randomness import callback_rng


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and augmentation settings; saved in every checkpoint."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-2
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    crop_frames: int | None = None
    freq_masks: int = 2
    freq_mask_width: int = 8
    time_masks: int = 2
    time_mask_width: int = 10
    mixup_alpha: float = 0.0
    label_smoothing: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose 'adamw' or 'sgd'")
        if self.schedule not in ("cosine", "onecycle"):
            raise ValueError(f"unknown schedule {self.schedule!r}; choose 'cosine' or 'onecycle'")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"epochs, batch_size and lr must be positive: {self}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        check_fields(cls, values, "training option(s)")
        return cls(**values)


def _augment(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Random time crop, then SpecAugment-style masks (masked to 0 = the mean after normalisation)."""
    if cfg.crop_frames is not None:
        x = time_crop(x, cfg.crop_frames, gen)
    return spec_masks(x, cfg.freq_masks, cfg.freq_mask_width, cfg.time_masks, cfg.time_mask_width, gen)


@torch.no_grad()
def evaluate(model: torch.nn.Module, normalizer: Normalizer, dataset: AudioDataset,
             batch_size: int = 128) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix (rows: true class) on full clips.

    Runs the model in eval mode through a copy with batch norm folded (models.folding): the same
    outputs up to float rounding, a quarter faster; `model` itself, and its train/eval mode, stay as they were.
    """
    frozen = fold_batchnorm(model)
    device = next(model.parameters()).device
    x_all, y_all = dataset.tensors()
    preds = []
    for start in range(0, len(y_all), batch_size):
        logits, _, _ = frozen(normalizer(x_all[start:start + batch_size].to(device)))
        preds.append(logits.argmax(1).cpu())
    pred = torch.cat(preds)
    n = len(dataset.classes)
    confusion = torch.bincount(y_all * n + pred, minlength=n * n).reshape(n, n)
    support = confusion.sum(1).clamp_min(1)
    per_class = (confusion.diag().float() / support).tolist()
    return {"accuracy": float((pred == y_all).float().mean()),
            "per_class_accuracy": dict(zip(dataset.classes, per_class)),
            "confusion": confusion.tolist()}


def _scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle" and total >= 4:
        # At least two warm-up steps: OneCycleLR divides by (warm-up steps - 1).
        warmup = min(0.5, max(0.2, 2.5 / total))
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total, pct_start=warmup)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay,
                               nesterov=True)
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_classifier(preset: str, train_set: AudioDataset, test_set: AudioDataset, run_dir: str | Path,
                     config: TrainConfig = TrainConfig(), *, model_args: dict[str, Any] | None = None,
                     output_name: str = "teacher", resume: bool = False, overwrite: bool = False,
                     progress: bool = True, device: str = "cpu",
                     on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train `preset` on `train_set`, evaluating on `test_set` after every epoch.

    Writes run_dir/<output_name>_checkpoint.pt after every epoch and, at the end, run_dir/<output_name>.pt
    (self-describing, see checkpoint.load_trained) and run_dir/<output_name>_metrics.json.
    A run_dir holding a run is refused unless `resume` (continue it) or `overwrite` (start over).
    Returns the metrics dict, with the per-epoch history.
    """
    run_dir = Path(run_dir)
    ckpt_path = run_dir / checkpoint_name(output_name)
    final_path = run_dir / model_name(output_name)
    if train_set.classes != test_set.classes:
        raise ValueError(f"train and test classes differ: {train_set.classes} vs {test_set.classes}")
    if train_set.config != test_set.config:
        raise ValueError("train and test sets were made with different FeatureConfigs")
    state = _start_or_resume(ckpt_path, final_path, config, preset, model_args or {}, resume, overwrite)
    torch.manual_seed(config.seed)
    model = build_model(preset, train_set.config.n_mels, len(train_set.classes), **(model_args or {})).to(device)
    gen = torch.Generator().manual_seed(config.seed)
    x_train, y_train = train_set.tensors()
    if not torch.isfinite(x_train).all():
        raise ValueError(f"{train_set.name}: training features hold NaN or infinite values; rebuild the data set "
                         "(delete its feature cache) or check the audio files")
    normalizer = Normalizer.fit(train_set.features).to(device)
    steps_per_epoch = math.ceil(len(y_train) / config.batch_size)
    optimizer = _optimizer(model, config)
    scheduler = _scheduler(optimizer, config, steps_per_epoch)
    history: list[dict[str, Any]] = []
    start_epoch, train_seconds = 0, 0.0
    if state is not None:
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        scheduler.load_state_dict(state["scheduler_state"])
        gen.set_state(state["generator_state"])
        torch.set_rng_state(state["torch_rng_state"])
        history, start_epoch, train_seconds = state["history"], state["epoch"], state["train_seconds"]
    run_dir.mkdir(parents=True, exist_ok=True)
    payload_base = dict(preset=preset, model_args=model_args or {}, feature_config=train_set.config,
                        classes=train_set.classes, dataset=train_set.name)
    bar = tqdm(range(start_epoch, config.epochs), desc=f"train {preset}", disable=not progress,
               initial=start_epoch, total=config.epochs)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(y_train), generator=gen)
        total_loss, total_correct = 0.0, 0
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            xb = _augment(normalizer(x_train[idx].to(device)), config, gen)
            yb = y_train[idx].to(device)
            loss, logits = _loss(model, xb, yb, config, gen)
            if not torch.isfinite(loss):
                kept = (f"the last good checkpoint is kept at {ckpt_path}" if ckpt_path.exists()
                        else "no checkpoint was written yet")
                raise FloatingPointError(
                    f"training loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; {kept}. "
                    f"Lower lr (now {config.lr}) or check the input features for NaN")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(idx)
            total_correct += int((logits.argmax(1) == yb).sum())
        train_seconds += time.perf_counter() - t0
        test = evaluate(model, normalizer, test_set)
        record = {"epoch": epoch + 1, "train_loss": total_loss / len(y_train),
                  "train_accuracy": total_correct / len(y_train), "test_accuracy": test["accuracy"],
                  "lr": scheduler.get_last_lr()[0], "train_seconds": train_seconds}
        history.append(record)
        bar.set_postfix(loss=f"{record['train_loss']:.3f}", test=f"{test['accuracy']:.3f}")
        save_checkpoint({**model_payload(model, normalizer=normalizer, **payload_base), "kind": "training",
                         "train_config": dataclasses.asdict(config), "optimizer_state": optimizer.state_dict(),
                         "scheduler_state": scheduler.state_dict(), "generator_state": gen.get_state(),
                         "torch_rng_state": torch.get_rng_state(), "history": history, "epoch": epoch + 1,
                         "train_seconds": train_seconds}, ckpt_path)
        if on_epoch is not None:
            with callback_rng(device):
                on_epoch(record)
    final = evaluate(model, normalizer, test_set)
    cost = model_cost(model, train_set.config)
    metrics = {"dataset": train_set.name, "preset": preset, "test_accuracy": final["accuracy"],
               "per_class_accuracy": final["per_class_accuracy"], "confusion": final["confusion"],
               "epochs": config.epochs, "train_seconds": train_seconds, "params": cost["params"],
               "mflops_per_second_of_audio": cost["mflops_per_second_of_audio"], "history": history,
               "train_config": dataclasses.asdict(config), "n_train": len(train_set), "n_test": len(test_set),
               "code": code_version()}
    save_checkpoint({**model_payload(model, normalizer=normalizer, **payload_base), "metrics": metrics}, final_path)
    (run_dir / metrics_name(output_name)).write_text(json.dumps(metrics, indent=2))
    return metrics


def _loss(model: torch.nn.Module, xb: torch.Tensor, yb: torch.Tensor, cfg: TrainConfig,
          gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy, with mixup between the batch and a shuffled copy when mixup_alpha > 0."""
    if cfg.mixup_alpha <= 0:
        logits, _, _ = model(xb)
        return F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing), logits
    lam = float(torch.distributions.Beta(cfg.mixup_alpha, cfg.mixup_alpha).sample())
    perm = torch.randperm(len(yb), generator=gen).to(xb.device)
    logits, _, _ = model(lam * xb + (1 - lam) * xb[perm])
    loss = (lam * F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
            + (1 - lam) * F.cross_entropy(logits, yb[perm], label_smoothing=cfg.label_smoothing))
    return loss, logits


def _start_or_resume(ckpt_path: Path, final_path: Path, config: TrainConfig, preset: str,
                     model_args: dict[str, Any], resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """The checkpoint state to continue from, or None to start fresh; refuses to clobber a run, and to resume
    one trained with other settings."""
    done = "a finished run" if final_path.exists() else "an unfinished run"
    state = start_or_resume(ckpt_path, "training", (final_path,), resume=resume, overwrite=overwrite, what=done)
    if state is None:
        return None
    saved = TrainConfig.from_dict(state["train_config"])
    if saved != config or state["preset"] != preset or state["model_args"] != model_args:
        raise ValueError(f"cannot resume {ckpt_path}: it was trained with preset {state['preset']!r}, "
                         f"{saved}; this call asks for {preset!r}, {config}. Use the same settings or overwrite=True")
    return state
