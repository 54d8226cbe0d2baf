"""Self-describing checkpoints: written atomically, checked for format and version on load.

A checkpoint holds everything needed to rebuild its model and front end (preset, model
arguments, FeatureConfig, normalisation statistics, class names), so later stages start
from the file alone, with no access to the training data.

Checkpoints hold only tensors, numbers, strings and containers of them, so they load with
torch.load(weights_only=True): a file from elsewhere that carries pickled Python objects (which could
run code when unpickled) is refused, never unpickled.
"""
from __future__ import annotations

import hashlib
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .cache import LOAD_ERRORS, atomic_save
from .features import FeatureConfig, Normalizer
from .models import StatsPoolingClassifier, build_model

FORMAT = "framilab-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable framilab checkpoint; the message says why and what to do."""


class RunExistsError(FileExistsError):
    """run_dir already holds a run; say resume=True or overwrite=True."""


def start_or_resume(checkpoint: Path, kind: str, finished: tuple[Path, ...], *, partial: tuple[Path, ...] = (),
                    resume: bool, overwrite: bool, what: str) -> dict[str, Any] | None:
    """The state to continue a stage from (its checkpoint of `kind`), or None to start fresh after deleting the
    old run's checkpoint, `finished` outputs and `partial` ones (files or folders). A checkpoint or a finished
    output is `what` (e.g. "a distillation run"), refused unless `resume` or `overwrite` says which; partial
    outputs without a checkpoint (a run killed before its first one) hold nothing to resume and are replaced."""
    if resume and overwrite:
        raise ValueError("choose resume=True or overwrite=True, not both")
    if overwrite or not (checkpoint.exists() or any(p.exists() for p in finished)):
        for path in (checkpoint, *finished, *partial):
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        return None
    if not resume:
        raise RunExistsError(f"{checkpoint.parent} already holds {what}; pass resume=True to continue it or "
                             "overwrite=True to start over (the old run is then deleted)")
    if not checkpoint.exists():
        raise RunExistsError(f"cannot resume: {checkpoint.parent} holds {what} but not its checkpoint "
                             f"{checkpoint.name}; use overwrite=True")
    return load_checkpoint(checkpoint, kind=kind)


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    """Save `payload` with the format tag and library version, atomically."""
    atomic_save({"format": FORMAT, "format_version": FORMAT_VERSION, "framilab_version": __version__, **payload},
                Path(path))


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Load and check a checkpoint; `kind` (e.g. 'classifier') must match the stored kind."""
    path = Path(path).expanduser()
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.pt"))
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; pass the file inside it"
                              + (f" (it holds {inside})" if inside else " (it holds no .pt file)"))
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "global" not in str(err).lower():
            raise CheckpointError(f"{path}: corrupted or not a torch file ({err}); re-run the stage that wrote it") from None
        raise CheckpointError(
            f"{path}: refused: it holds Python objects that framilab checkpoints never contain, and unpickling "
            f"them could run code ({_unpickler_reason(err)}). Load only checkpoints framilab wrote, "
            "or re-run the stage that writes it") from None
    except LOAD_ERRORS as err:
        raise CheckpointError(f"{path}: corrupted or not a torch file ({type(err).__name__}: {err}); "
                              "re-run the stage that wrote it") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a framilab checkpoint (no '{FORMAT}' tag)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload.get('format_version')} written by framilab "
            f"{payload.get('framilab_version')}; this framilab {__version__} reads format {FORMAT_VERSION}. "
            "Re-run the stage with this version, or install the version that wrote it")
    if kind is not None and payload.get("kind") != kind:
        raise CheckpointError(f"{path}: holds a {payload.get('kind')!r}, not a {kind!r}")
    return payload


def _unpickler_reason(err: pickle.UnpicklingError) -> str:
    """The line of torch's weights-only refusal that names what was refused (its first line is boilerplate)."""
    lines = [line.strip().replace("WeightsUnpickler error: ", "") for line in str(err).splitlines()[1:]]
    named = [line for line in lines if line and not line.startswith(("Check the documentation", "Please file"))]
    return (named[0] if named else "objects other than tensors and plain data")[:200]


@dataclass
class TrainedModel:
    """A model with the front end it was trained on: what inversion and distillation start from."""

    model: StatsPoolingClassifier
    normalizer: Normalizer
    feature_config: FeatureConfig
    classes: list[str]
    preset: str
    dataset: str
    metrics: dict[str, Any]
    path: Path | None = None

    def fingerprint(self) -> str:
        """A short hash of the weights, so a pool or student can tell which teacher made it."""
        digest = hashlib.sha1()
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]


def model_payload(model: StatsPoolingClassifier, preset: str, model_args: dict[str, Any], normalizer: Normalizer,
                  feature_config: FeatureConfig, classes: list[str], dataset: str) -> dict[str, Any]:
    """The part of a checkpoint that rebuilds a model and its front end."""
    return {"kind": "classifier", "preset": preset, "model_args": model_args, "model_state": model.state_dict(),
            "normalizer_state": normalizer.state_dict(), "feature_config": feature_config.to_dict(),
            "classes": list(classes), "dataset": dataset}


CLASSIFIER_KEYS = ("preset", "model_args", "model_state", "normalizer_state", "feature_config", "classes", "dataset")


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Rebuild a trained classifier (teacher or student) from its checkpoint alone, in eval mode."""
    payload = load_checkpoint(path, kind="classifier")
    missing = [key for key in CLASSIFIER_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: a classifier checkpoint without {missing}; it is damaged or was not written "
                              "by framilab: re-run the stage that wrote it")
    config = FeatureConfig.from_dict(payload["feature_config"])
    model = build_model(payload["preset"], config.n_mels, len(payload["classes"]), **payload["model_args"])
    try:
        model.load_state_dict(payload["model_state"])
    except RuntimeError as err:
        problems = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
        raise CheckpointError(f"{path}: its weights do not fit preset {payload['preset']!r} with "
                              f"{config.n_mels} mels and {len(payload['classes'])} classes ({len(problems)} "
                              f"mismatches, first: {problems[0] if problems else err}); the file was saved from "
                              "another model: re-run the stage that wrote it") from None
    norm_state = payload["normalizer_state"]
    normalizer = Normalizer(norm_state["mean"], norm_state["std"])
    return TrainedModel(model.to(device).eval(), normalizer.to(device), config, payload["classes"],
                        payload["preset"], payload["dataset"], payload.get("metrics", {}), Path(path))


load_teacher = load_trained
