"""One dependency list: environment.yml must agree with pyproject.toml."""
from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in conda
    assert set(pip) - {"-e ."} == wanted, "environment.yml's pip list has drifted from pyproject.toml"
    assert "torch==2.11.0" in wanted and "torchaudio==2.11.0" in wanted, "torch and torchaudio are pinned as a pair"
