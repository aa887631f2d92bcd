"""S27's GAN at benchmark size: are its samples digits an MNIST classifier is sure of?

Run: TRAINCTL_DATA_DIR=../shared/datasets python benchmarks/gan_score.py
     [--epochs 10] [--steps 300] [--seed 27] [--set KEY=VALUE ...]
     [--runs-dir runs/gan-score] [--grid docs/gan_samples.png]

1. trains configs/examples/s27_gan.yaml with trainctl (``--epochs`` epochs of
   ``--steps`` batches of 64; the defaults, 3,000 steps); ``--seed`` replaces the
   config's seed (weights, shuffling, the scored latents), ``--set`` passes further
   overrides to ``trainctl fit``;
2. trains configs/mnist.yaml (the MLP classifier, ~95% test accuracy), or reuses a
   completed run of it in ``--runs-dir``;
3. ``trainctl predict`` on the GAN run: 64 samples from the generator (seeded latents);
4. scores them with the classifier: the share of samples whose top class probability
   exceeds 0.9, and how many classes those samples cover (target: >= 50%, >= 5 classes).

The GAN's last sample grid is copied to ``--grid`` (for the README).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SURE = 0.9


def trainctl(*args: str) -> str:
    """Run the trainctl CLI from the repository root; return its output (it must succeed)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "trainctl", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"trainctl {' '.join(args)} failed ({done.returncode}):\n"
                 f"{done.stdout}{done.stderr}")
    return done.stdout.strip()


def classifier_run(runs: Path) -> Path:
    """A completed run of configs/mnist.yaml in ``runs``, trained now if there is none."""
    for run in sorted(runs.glob("mnist-mlp-*"), reverse=True):
        info = json.loads((run / "run.json").read_text())
        if info.get("status") == "completed" and (run / "model.keras").is_file():
            return run
    out = trainctl("fit", "configs/mnist.yaml", "--runs-dir", str(runs))
    return Path(out.splitlines()[-1])


def score(samples: np.ndarray, classifier: Path) -> tuple[float, list[int], np.ndarray]:
    """Share of samples the classifier gives > SURE to one class; those classes; all probs."""
    import keras

    model = keras.saving.load_model(classifier / "model.keras", compile=False)
    probs = model.predict(samples.reshape(len(samples), 784), verbose=0)
    sure = probs.max(axis=1) > SURE
    classes = sorted({int(c) for c in probs.argmax(axis=1)[sure]})
    return float(sure.mean()), classes, probs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300, help="batches (of 64) an epoch")
    parser.add_argument("--seed", type=int, default=None,
                        help="the run's seed (default: the config's, 27)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a further config override (repeatable)")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "gan-score")
    parser.add_argument("--grid", type=Path, default=None, help="copy the last sample grid here")
    args = parser.parse_args()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    overrides = [f"fit.epochs={args.epochs}", f"fit.steps_per_epoch={args.steps}",
                 "evaluate.steps=20", *([f"seed={args.seed}"] if args.seed is not None else []),
                 *args.overrides]
    out = trainctl("fit", "configs/examples/s27_gan.yaml", "--runs-dir", str(args.runs_dir),
                   *(arg for o in overrides for arg in ("--set", o)))
    print(out)
    gan = Path(out.splitlines()[-1])
    minutes = (time.monotonic() - start) / 60
    classifier = classifier_run(args.runs_dir)
    trainctl("predict", str(gan))
    samples = np.load(gan / "predictions.npy")
    share, classes, probs = score(samples, classifier)
    if args.grid:
        grids = sorted((gan / "samples").glob("epoch_*.png"))
        shutil.copyfile(grids[-1], args.grid)
        print(f"grid: {grids[-1].name} -> {args.grid}")
    counts = np.bincount(probs.argmax(axis=1), minlength=10).tolist()
    print(f"GAN: {args.epochs} epochs x {args.steps} steps in {minutes:.1f} min ({gan})"
          + (f"; overrides: {overrides[3:]}" if overrides[3:] else ""))
    print(f"classifier: {classifier}")
    print(f"samples with top class probability > {SURE}: {share:.0%} of {len(samples)}; "
          f"classes covered: {len(classes)} {classes}; argmax counts by class: {counts}")
    print("target (>= 50%, >= 5 classes):",
          "met" if share >= 0.5 and len(classes) >= 5 else "missed")


if __name__ == "__main__":
    main()
