"""Every committed notebook, exactly as it is (classroom defaults), under `pytest --nbval-lax`.

They run in the order a student steps through them, inside a scratch project (pyproject.toml, a
link to framilab, copies of the notebooks), so their run folders land there and not in the
repository: 02 and 03 read what 01 and 02 wrote, and 04 reuses 01's teacher.
"""
from __future__ import annotations

import json
from pathlib import Path

from conftest import run_nbval

from framilab.run import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]


def test_committed_notebooks_run_as_they_are(tmp_path):
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    (tmp_path / "framilab").symlink_to(ROOT / "framilab")
    (tmp_path / "notebooks").mkdir()
    notebooks = [tmp_path / "notebooks" / name for name in NOTEBOOKS.values()]
    for notebook in notebooks:
        notebook.write_text((ROOT / "notebooks" / notebook.name).read_text())
    result = run_nbval(notebooks, tmp_path, lax=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:]
    runs = tmp_path / "runs"
    teacher = json.loads((runs / "notebook" / "teacher" / "teacher_metrics.json").read_text())
    assert teacher["test_accuracy"] > 0.7, "notebook 01's classroom teacher (10 classes)"
    distill = json.loads((runs / "notebook" / "distillation" / "distill_metrics.json").read_text())
    assert distill["student_accuracy"] > 0.2, "notebook 03's data-free student, above chance (10 classes)"
    results = json.loads((runs / "benchmark-classroom" / "results.json").read_text())["synthetic"]
    assert results["teacher"] == teacher["test_accuracy"], "notebook 04 reused notebook 01's teacher"
    assert list(results["methods"]) == ["deepinversion", "frami"]
