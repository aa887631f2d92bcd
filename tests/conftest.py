"""Shared fixtures. TensorFlow's start-up noise is silenced for every test process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "datasets"


@pytest.fixture
def write_config(tmp_path):
    """Write YAML text to ``tmp_path/name`` and return the path."""
    def write(text: str, name: str = "exp.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path
    return write


def tiny_config(name: str, *, seed: int, epochs: int, extra: str = "") -> str:
    """A 3-class softmax on 4 synthetic features (64 samples): a run in about a second."""
    return f"""\
name: {name}
seed: {seed}
data:
  source: {{type: synthetic, samples: 64, test_samples: 16}}
  validation: {{holdout: 16}}
model:
  inputs: {{x: {{shape: [4]}}}}
  layers:
    - {{type: Dense, units: 3, activation: softmax, name: out}}
compile:
  optimizer: {{type: Adam, learning_rate: 0.05}}
  loss: sparse_categorical_crossentropy
  metrics: [sparse_categorical_accuracy]
fit: {{epochs: {epochs}, batch_size: 16}}
{extra}"""


@pytest.fixture
def mnist_dir():
    """The folder holding mnist.npz: $TRAINCTL_DATA_DIR or ../shared/datasets; skip if absent."""
    folder = Path(os.environ.get("TRAINCTL_DATA_DIR", SHARED_DATA))
    if not (folder / "mnist.npz").is_file():
        pytest.skip("mnist.npz not available (set TRAINCTL_DATA_DIR)")
    return folder


def run_python(code: str) -> "subprocess.CompletedProcess[str]":
    """Run ``python -c code`` in a fresh interpreter (for import-side-effect checks)."""
    import subprocess

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


# The longest files first: pytest-xdist (--dist loadfile) hands whole files to its
# workers in collection order, so long ones that start last leave one worker busy
# and the other idle at the end (measured: ~75 s of an 8.7 min fresh-clone run).
LONG_FILES = ("test_configs.py", "test_sweep.py", "test_launch.py", "test_resume.py",
              "test_fuzz.py", "test_gan.py", "test_loop.py", "test_models.py")


def pytest_collection_modifyitems(items):
    """Sort the long files' tests first (a stable sort: every file keeps its own order)."""
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
