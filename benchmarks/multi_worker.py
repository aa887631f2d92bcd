"""configs/mnist.yaml on N local workers (`trainctl launch`) against one process.

Run: TRAINCTL_DATA_DIR=../shared/datasets python benchmarks/multi_worker.py [--workers 2] [--seeds 42 1 2]
     [--set KEY=VALUE ...]

Both arms train the full config (2 epochs, global batch 64) with the custom loop (the
loop a multi-worker run uses), seed 42, and print test accuracy, the whole command's
wall time, model training time (run.json ``fit_seconds``), and for the launch each
worker's final-weights digest (all equal when the workers trained in step). On one
machine the workers share its cores, so this measures correctness and the cost of
the collectives, not a speed-up. Not a test: figures to read (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], env: dict) -> tuple[float, str]:
    """Run a trainctl command; (wall seconds, stdout). Raises on a non-zero exit."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n"
                         f"{proc.stderr}")
    return wall, proc.stdout


def summary(name: str, wall: float, stdout: str) -> dict:
    """The run's figures, read from the folder printed on the last line."""
    folder = Path(stdout.strip().splitlines()[-1])
    info = json.loads((folder / "run.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    digests = sorted(set(re.findall(r"final weights sha256 (\w+)", stdout)))
    history = json.loads((folder / "history.json").read_text())
    return {"arm": name, "seed": info.get("seed"),
            "test_accuracy": round(metrics["sparse_categorical_accuracy"], 4),
            "val_accuracy": [round(v, 4) for v in history["val_sparse_categorical_accuracy"]],
            "wall_s": round(wall, 2), "fit_s": info.get("fit_seconds"),
            "distribution": info.get("distribution"), "weight_digests": digests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42],
                        help="one round per seed (42: the config's own)")
    args = parser.parse_args()
    data = os.environ.get("TRAINCTL_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
    env = dict(os.environ, TRAINCTL_DATA_DIR=data, PYTHONPATH=str(ROOT))
    config = str(ROOT / "configs" / "mnist.yaml")
    for seed in args.seeds:
        sets = [item for value in ["fit.loop=custom", f"seed={seed}", *args.overrides]
                for item in ("--set", value)]
        with tempfile.TemporaryDirectory() as runs:
            one = summary("1 process", *run([sys.executable, "-m", "trainctl", "fit", config,
                                              "--runs-dir", runs, *sets], env))
            print(json.dumps(one), flush=True)
            many = summary(f"{args.workers} workers", *run(
                [sys.executable, "-m", "trainctl", "launch", "--workers", str(args.workers),
                 config, "--runs-dir", runs, *sets], env))
            print(json.dumps(many), flush=True)


if __name__ == "__main__":
    main()
