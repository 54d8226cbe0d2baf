"""Which code made a result: framilab's version and, in a git checkout, its commit (and whether tracked
files differed from it). Every stage writes it into its metrics, so a number in a table can be traced
back to the code that produced it, whoever collects the table later."""
from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import torch

from . import __version__


# What a result's code is: a change elsewhere (figures, notes, tests) cannot change a number.
CODE = ("framilab", "notebooks", "pyproject.toml")


@lru_cache(maxsize=1)
def code_version() -> str:
    """framilab's version and commit (describe); read once per process: a running kernel reports the code it
    imported, not later commits."""
    return describe(Path(__file__).resolve().parent.parent)


def describe(root: Path) -> str:
    """'framilab 0.1.0, commit 1a2b3c4' (+ ' with uncommitted changes' to the code in `root`: the library,
    notebooks or package metadata, not figures or notes); the version alone outside a git checkout."""
    if not (root / ".git").exists():
        return f"framilab {__version__}"
    try:
        commit = _git(root, "rev-parse", "--short", "HEAD")
        changed = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *CODE)
    except (OSError, subprocess.SubprocessError):
        return f"framilab {__version__}"
    return f"framilab {__version__}, commit {commit}" + (" with uncommitted changes" if changed else "")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30,
                          check=True).stdout.strip()


def host() -> str:
    """'x86_64 Intel(R) Xeon(R) Processor, AVX512, 2 torch threads': what a cell's minutes were measured on
    (hosts differ in speed and in the kernels torch runs), recorded with its result."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{platform.machine()} {cpu}, {torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} torch threads")


def utc(seconds: float | None = None) -> str:
    """'2026-12-02 11:58 UTC' for a POSIX time (now by default): when a result was made, kept in its metrics
    (a file's mtime does not survive git)."""
    moment = datetime.now(timezone.utc) if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
