"""What each performance knob does to `trainctl fit configs/mnist.yaml`: the measurements
behind the defaults (README "Speed", docs/benchmarks.md).

Run: TRAINCTL_DATA_DIR=../shared/datasets python benchmarks/knobs.py [--repeats 3]
     [--only NAME ...]

Each round runs every variant (a set of ``--set`` overrides) in a fresh process, in
alternating order, and the medians of fit time, whole-process wall time and test
accuracy are printed against the defaults. Not a test: figures to read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner_vs_script import ROOT, bench_env, trainctl_arm  # noqa: E402  (a sibling)

VARIANTS: dict[str, list[str]] = {
    "defaults": [],
    "steps_per_execution=1": ["compile.steps_per_execution=1"],
    "steps_per_execution=782 (an epoch)": ["compile.steps_per_execution=782"],
    "jit_compile=true": ["compile.jit_compile=true"],
    "threads 1/1": ["runtime.threads.intra_op=1", "runtime.threads.inter_op=1"],
    "threads 2/2": ["runtime.threads.intra_op=2", "runtime.threads.inter_op=2"],
    "prefetch=0": ["runtime.prefetch=0"],
    "cache=true": ["runtime.cache=true"],
    "mixed_bfloat16": ["runtime.precision=mixed_bfloat16"],
    "custom loop": ["fit.loop=custom"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), metavar="NAME",
                        help="variants to run besides the defaults")
    args = parser.parse_args()
    names = ["defaults", *(n for n in (args.only or VARIANTS) if n != "defaults")]
    data_dir = Path(os.environ.get("TRAINCTL_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    env = bench_env(data_dir)
    results: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeats):
            for name in names if round_ % 2 == 0 else reversed(names):
                r = trainctl_arm(env, Path(tmp), VARIANTS[name])
                results[name].append(r)
                print(f"round {round_ + 1} {name:>36}: fit {r['fit']:6.2f} s  wall "
                      f"{r['wall']:6.2f} s  accuracy {r['accuracy']:.4f}", flush=True)
    base = statistics.median(r["fit"] for r in results["defaults"])
    print(f"\nmedians over {args.repeats} rounds (fit ratio: defaults / variant)")
    for name, rows in results.items():
        fit = statistics.median(r["fit"] for r in rows)
        wall = statistics.median(r["wall"] for r in rows)
        acc = statistics.median(r["accuracy"] for r in rows)
        print(f"{name:>36}: fit {fit:6.2f} s ({base / fit:.2f}x)  wall {wall:6.2f} s  "
              f"accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
