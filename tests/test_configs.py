"""Every config in configs/ runs end to end at smoke size (what CI does for a repository)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import ROOT
from trainctl.cli import cli

CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if "_base" not in p.parts)


def test_there_are_configs():
    assert ROOT / "configs" / "mnist.yaml" in CONFIGS


@pytest.mark.parametrize("config", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_config_smoke(config, tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))
    runs = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["fit", str(config), "--smoke", "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    run = runs / result.output.strip().splitlines()[-1].split("/")[-1]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["smoke"] is True
    history = json.loads((run / "history.json").read_text())
    assert history["loss"] and all(len(v) == len(history["loss"]) for v in history.values())
