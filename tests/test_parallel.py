"""Parallel runs never collide: four ``trainctl fit`` processes, one name, one runs folder.

Each process is a real ``python -m trainctl fit configs/mnist.yaml --smoke`` on
synthetic data shaped like MNIST (no data file needed), all started together with
the same ``--name`` so they race for folders named in the same second. Every one
must exit 0 and leave its own complete run folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT

WORKERS = 4
SYNTHETIC = "data.source={type: synthetic, samples: 256, test_samples: 64}"
RUN_FILES = ["config.yaml", "run.json", "history.json", "history.csv", "summary.txt",
             "model.keras", "metrics.json"]


@pytest.mark.slow
def test_four_parallel_fits_get_four_complete_run_folders(tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
           "CUDA_VISIBLE_DEVICES": ""}
    argv = [sys.executable, "-m", "trainctl", "fit", "configs/mnist.yaml", "--smoke",
            "--runs-dir", str(runs), "--name", "race", "--set", SYNTHETIC]
    started = time.monotonic()
    procs = [subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(WORKERS)]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            outputs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    elapsed = time.monotonic() - started
    for code, out, err in outputs:
        assert code == 0, f"exit {code}\n{out}\n{err[-3000:]}"

    printed = [out.strip().splitlines()[-1] for _code, out, _err in outputs]
    folders = sorted(runs.iterdir())
    assert len(set(printed)) == WORKERS, printed  # each process got its own folder
    assert sorted(str(p) for p in folders) == sorted(printed)
    for folder in folders:
        assert folder.name.startswith("race-")
        for name in RUN_FILES:
            assert (folder / name).is_file(), f"{folder}: no {name}"
        info = json.loads((folder / "run.json").read_text())
        assert info["status"] == "completed" and info["smoke"] is True, info
        assert len(info["attempts"]) == 1  # no process wrote into another's folder
        history = json.loads((folder / "history.json").read_text())
        assert history and all(len(v) == 1 for v in history.values())
        assert set(json.loads((folder / "metrics.json").read_text())) == {
            "loss", "sparse_categorical_accuracy"}
        assert not [p for p in folder.rglob("*") if ".tmp" in p.name]
    print(f"{WORKERS} parallel fits: {elapsed:.1f}s: {[p.name for p in folders]}")
