"""S1 over several seeds: trainctl's configs/mnist.yaml against the users' plain script.

Run: TRAINCTL_DATA_DIR=../shared/datasets python benchmarks/mnist_seeds.py [--seeds 1 2 3 4 5]
Prints each seed's test accuracy for both, then the median, min and max of each:
trainctl's figures should sit in the plain script's range (SPEC S1: median 0.957,
range 0.94-0.964).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def trainctl_accuracy(seed: int, runs: Path) -> float:
    out = subprocess.run([sys.executable, "-m", "trainctl", "fit", "configs/mnist.yaml",
                          "--runs-dir", str(runs), "--set", f"seed={seed}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    run = Path(out.strip().splitlines()[-1])
    return json.loads((run / "metrics.json").read_text())["sparse_categorical_accuracy"]


def script_accuracy(seed: int, data: Path) -> float:
    out = subprocess.run([sys.executable, "benchmarks/seed_mlp.py", "--seed", str(seed),
                          "--data", str(data)], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return float(re.search(r"test acc ([0-9.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = parser.parse_args()
    data = Path(os.environ.get("TRAINCTL_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            ours.append(trainctl_accuracy(seed, Path(tmp)))
            theirs.append(script_accuracy(seed, data / "mnist.npz"))
            print(f"seed {seed}: trainctl {ours[-1]:.4f}  plain script {theirs[-1]:.4f}",
                  flush=True)
    for name, acc in (("trainctl", ours), ("plain script", theirs)):
        print(f"{name}: median {statistics.median(acc):.4f}, min {min(acc):.4f}, "
              f"max {max(acc):.4f} over {len(acc)} seeds")


if __name__ == "__main__":
    main()
