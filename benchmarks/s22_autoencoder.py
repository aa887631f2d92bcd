"""S22's conv autoencoder at full size: how well it reconstructs MNIST test digits.

Run: TRAINCTL_DATA_DIR=../shared/datasets python benchmarks/s22_autoencoder.py [--epochs N]
(about 4 minutes an epoch on 2 CPU cores)
Trains configs/examples/s22_autoencoder.yaml with trainctl and prints its test MSE
next to two baselines: a black image, and the mean training image (what a model
that ignores its input can reach at best).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="extra --set KEY=VALUE for trainctl fit")
    args = parser.parse_args()
    data = Path(os.environ.get("TRAINCTL_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    with np.load(data / "mnist.npz") as f:
        train = f["x_train"][:50000].astype("float32") / 255.0
        test = f["x_test"].astype("float32") / 255.0
    black = float(np.mean(test ** 2))
    mean_image = float(np.mean((test - train.mean(axis=0)) ** 2))
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-m", "trainctl", "fit", "configs/examples/s22_autoencoder.yaml",
             "--runs-dir", tmp,
             *(["--set", f"fit.epochs={args.epochs}"] if args.epochs else []),
             *[x for o in args.overrides for x in ("--set", o)]],
            cwd=ROOT, capture_output=True, text=True, check=True).stdout
        print(out.strip())
        run = Path(out.strip().splitlines()[-1])
        mse = json.loads((run / "metrics.json").read_text())["loss"]
    print(f"test MSE: autoencoder {mse:.4f}; mean-image baseline {mean_image:.4f}; "
          f"black-image baseline {black:.4f}")


if __name__ == "__main__":
    main()
