"""A notebook whose kernel dies (a native crash) fails at once, saying where, under nbval and under papermill;
nothing waits on a dead kernel."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import run_nbval

from framilab import run

CRASH = "import ctypes\nctypes.string_at(0)  # a segfault, as a broken native kernel gives"


def crashing_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell("steps = 1")
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first, nbformat.v4.new_code_cell("print(steps)"), nbformat.v4.new_code_cell(CRASH),
                nbformat.v4.new_code_cell("print('never')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def test_nbval_fails_the_cell_whose_kernel_died_with_its_python_stack(tmp_path):
    notebook = crashing_notebook(tmp_path / "crash.ipynb")
    result = run_nbval([notebook], tmp_path, lax=True, timeout=120)
    assert result.returncode == 1, result.stdout[-3000:]
    report = result.stdout
    assert "crash.ipynb::Cell 2" in report and "the kernel died while running this cell: killed by SIGSEGV" in report
    assert "Fatal Python error: Segmentation fault" in report and "string_at" in report
    assert "Kernel dead on test start" in report, "the cell after the crash fails at once too"
    assert "2 failed, 2 passed" in report


def test_a_stage_whose_kernel_died_names_the_stage_and_the_cell(tmp_path, monkeypatch):
    notebook = crashing_notebook(tmp_path / "crash.ipynb")
    monkeypatch.setattr(run, "notebook_path", lambda stage: notebook)
    monkeypatch.setattr(run, "valid_parameters", lambda stage: {"steps": 1})
    with pytest.raises(run.KernelDiedError, match=r"stage 'teacher': the notebook's kernel died while running "
                                                  r"cell 3 \('import ctypes'\)"):
        run.run_stage("teacher", {"steps": 2}, tmp_path / "out" / "crash.ipynb", progress=False)
