"""Keep what a run shows apart from what it computes: callbacks cannot move the run's random stream.

Synthesis draws from torch's global random stream (the generator's per-frame noise, fresh generators,
the student's initialisation). A live plot, a progress hook or a user's callback that draws from it too
would make how often the dashboard redraws change the samples and the student; this runs them on a fork.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def callback_rng(device: str | torch.device = "cpu") -> Iterator[None]:
    """Run the block on a copy of torch's random state (CPU, and `device` where it is a GPU), restored after."""
    device = torch.device(device)
    gpus = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        yield
