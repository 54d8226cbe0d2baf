"""Where runs and figures go: relative paths are taken from the project root, not the notebook's folder.

JupyterLab starts a notebook's kernel in notebooks/, papermill wherever it is called from; resolving
against the project root makes `run_dir="runs/demo"` mean the same folder in both.
"""
from __future__ import annotations

from pathlib import Path


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) holding framilab's pyproject.toml, else cwd."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "framilab").is_dir():
            return folder
    return here


def resolve(path: str | Path | None) -> Path | None:
    """`path` made absolute against the project root (None stays None)."""
    if path is None or str(path) == "":
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path
