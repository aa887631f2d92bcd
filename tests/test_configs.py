"""Every config in configs/ runs end to end at smoke size (what CI does for a repository).

One ``trainctl smoke`` over a copy of configs/ with a broken config added runs them
all in one process (module fixture; ``--dist loadfile`` keeps it to one worker);
each config then has its own test, so a failure is still named by its config.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT, SHARED_DATA
from trainctl.cli import cli

CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if "_base" not in p.parts)


def test_there_are_configs():
    assert ROOT / "configs" / "mnist.yaml" in CONFIGS


BROKEN = "broken/typo.yaml"


@pytest.fixture(scope="module")
def smoked(tmp_path_factory):
    """``trainctl smoke`` over a copy of configs/ plus an invalid config: (result, the
    JUnit testcases by config path relative to the copy, the copy's folder)."""
    data = os.environ.get("TRAINCTL_DATA_DIR", str(SHARED_DATA))
    if not os.path.isfile(os.path.join(data, "mnist.npz")):
        pytest.skip("mnist.npz not available (set TRAINCTL_DATA_DIR)")
    top = tmp_path_factory.mktemp("smoke")
    configs = top / "configs"
    shutil.copytree(ROOT / "configs", configs)
    broken = configs / BROKEN
    broken.parent.mkdir()
    broken.write_text((ROOT / "configs" / "mnist.yaml").read_text().replace(
        "batch_size: 64", "batch_sise: 64"), encoding="utf-8")
    junit = top / "junit.xml"
    result = CliRunner(env={"TRAINCTL_DATA_DIR": data}).invoke(
        cli, ["smoke", str(configs), "--runs-dir", str(top / "runs"), "--junit", str(junit)])
    cases = {str(Path(c.get("name")).relative_to(configs)): c
             for c in ET.parse(junit).getroot().iter("testcase")}
    return result, cases, configs


@pytest.mark.slow  # all configs of the repository: ~100 s on the 2-core machine, once
def test_broken_config_is_named_and_fails_the_smoke_run(smoked):
    result, cases, configs = smoked
    assert result.exit_code == 2, result.output  # invalid: exit 2 class
    row = next(line for line in result.output.splitlines() if BROKEN in line)
    assert row.startswith("invalid") and "fit.batch_sise" in row
    failure = cases[BROKEN].find("failure")
    assert failure is not None and failure.get("type") == "invalid"
    assert "batch_sise" in failure.get("message")
    assert len(cases) == len(CONFIGS) + 1


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_config_smoke(config, smoked):
    result, cases, _ = smoked
    case = cases[str(config.relative_to(ROOT / "configs"))]
    failure = case.find("failure")
    assert failure is None, f"{failure.get('message')}\n{failure.text}"
    out = case.find("system-out").text
    # one epoch (smoke's cap), then the test split (every repository config has one)
    assert "epoch 1/1" in out and "test - loss:" in out, out
    # The run folder the config's run printed (system-out's "run: PATH" line)
    run = Path(re.search(r"^run: (.+)$", out, re.M).group(1))
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["smoke"] is True
    history = json.loads((run / "history.json").read_text())
    assert history["loss"] and all(len(v) == len(history["loss"]) for v in history.values())
