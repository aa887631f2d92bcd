"""S27's GAN at benchmark size: are its samples digits an MNIST classifier is sure of?

Run: TRAINCTL_DATA_DIR=../shared/datasets python benchmarks/gan_score.py
     [--epochs 10] [--steps 400] [--seed 27] [--set KEY=VALUE ...]
     [--judge cnn|mlp|both] [--runs-dir runs/gan-score] [--grid docs/gan_samples.png]

1. trains configs/examples/s27_gan.yaml (an AC-GAN on labelled MNIST: each sample's
   class is read off its latent vector) with trainctl (``--epochs`` epochs of
   ``--steps`` batches of 64; the defaults, 4,000 steps, 6-8 min on 2 CPU cores; with
   XLA, ``compile.jit_compile=true``); ``--seed`` replaces the config's seed (weights,
   shuffling, the scored latents), ``--set`` passes further overrides to ``trainctl fit``;
2. the judge: a trainctl-trained MNIST classifier, reused when ``--runs-dir`` holds a
   completed run of it, else trained there first (``trainctl fit``):
   ``cnn`` (the default), benchmarks/configs/mnist_cnn.yaml, a small convnet (99.0%
   test accuracy, ~2 min); ``mlp``, configs/mnist.yaml (95.1%, a few seconds);
   ``both`` scores with each;
3. ``trainctl predict`` on the GAN run: 64 samples from the generator (seeded latents);
4. scores them with the judge: the share of samples whose top class probability
   exceeds 0.9, and how many classes those samples cover (target: >= 50%, >= 5 classes).
   Beside it, the judge's reference: the same share for real MNIST test digits (the
   first 64 and all 10,000), what a perfect generator would score. The CNN is sure
   of 96.9% of the real test digits, the MLP of only 85.5%: the MLP under-scores
   any generator.

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


JUDGES = {  # --judge: the classifier config, its runs' name prefix
    "cnn": ("benchmarks/configs/mnist_cnn.yaml", "mnist-cnn-"),
    "mlp": ("configs/mnist.yaml", "mnist-mlp-"),
}


def judge_run(runs: Path, judge: str) -> Path:
    """A completed run of the judge's config in ``runs``, trained now if there is none."""
    config, prefix = JUDGES[judge]
    for run in sorted(runs.glob(f"{prefix}*"), reverse=True):
        info = json.loads((run / "run.json").read_text())
        if info.get("status") == "completed" and (run / "model.keras").is_file():
            return run
    out = trainctl("fit", config, "--runs-dir", str(runs))
    return Path(out.splitlines()[-1])


def probabilities(model, images: np.ndarray) -> np.ndarray:
    """The classifier's class probabilities for ``images`` in [0, 1] (any 28x28 layout)."""
    shape = tuple(model.inputs[0].shape[1:])
    return model.predict(images.reshape((len(images), *shape)), verbose=0, batch_size=256)


def sure_share(probs: np.ndarray) -> tuple[float, list[int]]:
    """Share of rows whose top probability exceeds SURE; the classes of those rows."""
    sure = probs.max(axis=1) > SURE
    return float(sure.mean()), sorted({int(c) for c in probs.argmax(axis=1)[sure]})


def reference(model, count: int) -> tuple[float, float, int, float]:
    """The judge on real MNIST test digits (what a perfect generator would score): the
    share above SURE of the first ``count`` and of all of them, their number, and the
    judge's test accuracy."""
    from trainctl.data.builtin import load_arrays

    _, (x_test, y_test) = load_arrays("mnist")
    probs = probabilities(model, x_test.astype("float32") / 255.0)
    accuracy = float((probs.argmax(axis=1) == y_test.reshape(-1)).mean())
    return sure_share(probs[:count])[0], sure_share(probs)[0], len(probs), accuracy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=400, help="batches (of 64) an epoch")
    parser.add_argument("--seed", type=int, default=None,
                        help="the run's seed (default: the config's, 27)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a further config override (repeatable)")
    parser.add_argument("--judge", choices=[*JUDGES, "both"], default="cnn",
                        help="the classifier that scores the samples (default: cnn)")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "gan-score")
    parser.add_argument("--grid", type=Path, default=None, help="copy the last sample grid here")
    args = parser.parse_args()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    judges = list(JUDGES) if args.judge == "both" else [args.judge]
    start = time.monotonic()
    extra = [*([f"seed={args.seed}"] if args.seed is not None else []), *args.overrides]
    # XLA: Keras leaves it off on a CPU-only machine; here it makes a step ~1.5x faster
    overrides = [f"fit.epochs={args.epochs}", f"fit.steps_per_epoch={args.steps}",
                 "evaluate.steps=20", "compile.jit_compile=true", *extra]
    out = trainctl("fit", "configs/examples/s27_gan.yaml", "--runs-dir", str(args.runs_dir),
                   *(arg for o in overrides for arg in ("--set", o)))
    print(out)
    gan = Path(out.splitlines()[-1])
    minutes = (time.monotonic() - start) / 60
    runs = {judge: judge_run(args.runs_dir, judge) for judge in judges}
    trainctl("predict", str(gan))
    samples = np.load(gan / "predictions.npy")
    if args.grid:
        grids = sorted((gan / "samples").glob("epoch_*.png"))
        shutil.copyfile(grids[-1], args.grid)
        print(f"grid: {grids[-1].name} -> {args.grid}")
    print(f"GAN: {args.epochs} epochs x {args.steps} steps in {minutes:.1f} min ({gan})"
          + (f"; overrides: {extra}" if extra else ""))
    import keras

    for judge, run in runs.items():
        model = keras.saving.load_model(run / "model.keras", compile=False)
        probs = probabilities(model, samples)
        share, classes = sure_share(probs)
        first, every, real, accuracy = reference(model, len(samples))
        counts = np.bincount(probs.argmax(axis=1), minlength=10).tolist()
        print(f"judge {judge}: {run} ({accuracy:.1%} test accuracy); real test digits with "
              f"top class probability > {SURE}: {first:.0%} of the first {len(samples)}, "
              f"{every:.1%} of all {real:,}")
        print(f"  samples with top class probability > {SURE}: {share:.0%} of {len(samples)} "
              f"({round(share * len(samples))}); classes covered: {len(classes)} {classes}; "
              f"argmax counts by class: {counts}")
        print("  target (>= 50%, >= 5 classes):",
              "met" if share >= 0.5 and len(classes) >= 5 else "missed")


if __name__ == "__main__":
    main()
