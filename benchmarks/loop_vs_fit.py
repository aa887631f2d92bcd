"""trainctl's custom loop against Keras's model.fit, in one process, on the same data.

Run: TRAINCTL_DATA_DIR=../shared/datasets python benchmarks/loop_vs_fit.py [--rounds 3]
     [--config configs/mnist.yaml] [--set KEY=VALUE ...]

Issue 5 wants ``fit.loop: custom`` within 5% of ``model.fit`` with the same knobs.
Between processes (benchmarks/runner_vs_script.py) the fit time of one run varies by
20% or more on a shared VM; here both loops run alternately in one process, each
round on a freshly prepared model and data stream (trainctl's own ``prepare``: the
same seed, weights and batches), with no callbacks, so only the loops differ. Prints
each fit's wall time, the validation loss it ended with, and the medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one_fit(config: Path, overrides: list[str], loop: str) -> tuple[float, float]:
    """Prepare the config with ``fit.loop: loop`` and train it; (seconds, last val_loss)."""
    from trainctl.config import load_config
    from trainctl.run.prepare import prepare

    cfg = load_config(config, [*overrides, f"fit.loop={loop}"])
    prep = prepare(cfg, smoke=False)
    fit = prep.loop.fit if prep.loop is not None else prep.model.fit
    started = time.perf_counter()
    history = fit(prep.train, epochs=prep.plan.epochs, steps_per_epoch=prep.steps_per_epoch,
                  validation_data=prep.validation, validation_steps=prep.plan.validation_steps,
                  callbacks=[], shuffle=False, verbose=0)
    return time.perf_counter() - started, history.history["val_loss"][-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "mnist.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {"keras": [], "custom": []}
    for round_ in range(args.rounds):
        order = ["keras", "custom"] if round_ % 2 == 0 else ["custom", "keras"]
        for loop in order:
            took, val_loss = one_fit(args.config, args.overrides, loop)
            seconds[loop].append(took)
            print(f"round {round_ + 1} {loop:>6}: fit {took:6.3f} s  val_loss {val_loss:.6f}",
                  flush=True)
    keras_s, custom_s = (statistics.median(seconds[k]) for k in ("keras", "custom"))
    print(f"medians over {args.rounds} rounds: model.fit {keras_s:.3f} s, custom loop "
          f"{custom_s:.3f} s ({custom_s / keras_s:.2f}x model.fit's time)")


if __name__ == "__main__":
    main()
