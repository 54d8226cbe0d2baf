"""A validation split cut from the training split: clips the teacher never learnt, and the test split untouched.

Scoring a data-free student on the real training clips leaves the test split alone, but the teacher learnt
those clips, so a student that copies the teacher well scores near the teacher's training accuracy there
(0.95-0.98 on ESC-10 for every setting studied), and settings cannot be told apart. Holding one group of the
training split out of the teacher's and judges' training gives clips neither saw, of the kind the test asks
about: for ESC, UrbanSound8K and AudioMNIST the last training fold (AudioMNIST's folds are speakers), for FSDD
one speaker (a new voice), for synthetic every fifth clip of each class.
"""
from __future__ import annotations

from collections import Counter
from typing import Hashable, NamedTuple, Sequence

from .base import AudioDataset, Clip

EVERY_NTH = 5


class ValidationSplit(NamedTuple):
    """The training split in two: `fit` for the teacher and judges, `held_out` to score students on."""

    fit: AudioDataset
    held_out: AudioDataset
    group: str


def validation_groups(clips: Sequence[Clip]) -> list[Hashable]:
    """The group each training clip is held out with: its fold, else its speaker, else its rank among the clips
    of its class modulo 5 (so every class gives a fifth of its clips)."""
    seen: Counter[int] = Counter()
    groups: list[Hashable] = []
    for clip in clips:
        groups.append(clip.fold if clip.fold is not None else clip.speaker if clip.speaker is not None
                      else (EVERY_NTH, seen[clip.target] % EVERY_NTH))
        seen[clip.target] += 1
    return groups


def group_name(group: Hashable) -> str:
    """A group's name for messages and folder names: fold4, a speaker's name, fifth4 (every fifth clip from the fifth)."""
    if isinstance(group, tuple):
        return f"fifth{group[1]}"
    return f"fold{group}" if isinstance(group, int) else str(group)


def held_out_groups(train: AudioDataset) -> list[str]:
    """The names of the groups `train` can hold out, in order (folds by number); the last is the default."""
    return [group_name(g) for g in sorted(set(validation_groups(train.clips)))]


def split_off_validation(train: AudioDataset, group: str | None = None) -> ValidationSplit:
    """(fit, held out, the group's name): the group named (held_out_groups; default the last) held out of
    `train`, the rest to fit on. Refuses a training split with one group, a name it does not have, and a cut
    that leaves a class out of either part: a model cannot learn or be scored on it there."""
    names = [group_name(g) for g in validation_groups(train.clips)]
    choices = held_out_groups(train)
    if len(choices) < 2:
        raise ValueError(f"{train.name}: its training split has one group ({choices}), so no part of it can be "
                         "held out by fold, speaker or position; give it clips of two folds or speakers or more")
    held = choices[-1] if group is None else group
    if held not in choices:
        raise ValueError(f"{train.name}: its training split has no group {held!r} to hold out; its groups: {choices}")
    parts = (train.subset([i for i, g in enumerate(names) if g != held]),
             train.subset([i for i, g in enumerate(names) if g == held]))
    for part, what in zip(parts, ("fit", f"held-out ({held})")):
        missing = [name for name, count in part.class_counts().items() if count == 0]
        if missing:
            raise ValueError(f"{train.name}: the {what} part of the training split has no clip of class(es) "
                             f"{missing}; hold out another group or add clips of those classes")
    return ValidationSplit(*parts, group=held)
