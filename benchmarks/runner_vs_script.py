"""trainctl against the users' hand-written script (S1), measured the same way.

Run: TRAINCTL_DATA_DIR=../shared/datasets python benchmarks/runner_vs_script.py [--repeats 3]
     [--set KEY=VALUE ...] [--custom-loop] [--plain-knobs]

Each round runs, in alternating order, (a) benchmarks/seed_mlp.py and (b) `trainctl
fit configs/mnist.yaml` (same data, epochs and batch size), each in a fresh process
with the round's seed (1, 2, 3, ...: accuracy is a median over seeds, not one
seed's luck), and reads: whole-process wall time, model.fit's wall time (the
script prints it, trainctl records ``fit_seconds`` in run.json), peak memory (the
child's max RSS from wait4), test accuracy, and for trainctl its own work (run.json
``timings.own``: config, checks, run folder, its callbacks, saving) and the work its
writer thread did beside the training (``timings.background``: not in own, which is
what the training waits for; wall and fit times include its share of the CPU).
``--custom-loop`` adds trainctl with ``fit.loop: custom`` (the same knobs as the
default arm); ``--plain-knobs`` adds trainctl with every performance knob at the
plain script's values. Then it prints the medians, the ratios to the script, and the start-up
times of `trainctl --help` and `trainctl validate`. Not a test: figures to read
(docs/benchmarks.md keeps the latest).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The plain script's settings (Keras's defaults), for --plain-knobs: one step per call.
PLAIN_KNOBS = ("compile.steps_per_execution=1", "compile.jit_compile=auto")


def bench_env(data_dir: Path) -> dict:
    """The children's environment, as on a normal installation: Python may cache
    bytecode (PYTHONDONTWRITEBYTECODE, set on some machines, would recompile
    trainctl's modules in every process; pip compiles a regular install, and
    TensorFlow's modules are compiled already), and trainctl's is compiled now."""
    env = dict(os.environ, TRAINCTL_DATA_DIR=str(data_dir), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "trainctl")],
                   env=env, check=True)
    return env


def timed(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Run ``cmd``; (wall seconds, peak RSS in MB, stdout). Raises on a non-zero exit."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{out}")
    return wall, usage.ru_maxrss / 1024, out


def script_arm(env: dict, data: Path, seed: int | None = None) -> dict:
    seeded = ["--seed", str(seed)] if seed is not None else []
    wall, mem, out = timed([sys.executable, "benchmarks/seed_mlp.py", "--data", str(data),
                            *seeded], env)
    return {"wall": wall, "memory_mb": mem,
            "fit": float(re.search(r"fit seconds ([0-9.]+)", out).group(1)),
            "accuracy": float(re.search(r"test acc ([0-9.]+)", out).group(1))}


def trainctl_arm(env: dict, runs: Path, overrides: list[str], seed: int | None = None) -> dict:
    seeded = [f"seed={seed}"] if seed is not None else []
    sets = [x for o in [*seeded, *overrides] for x in ("--set", o)]
    wall, mem, out = timed([sys.executable, "-m", "trainctl", "fit", "configs/mnist.yaml",
                            "--runs-dir", str(runs), *sets], env)
    run = Path(out.strip().splitlines()[-1])
    info = json.loads((run / "run.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    return {"wall": wall, "memory_mb": mem, "fit": info["fit_seconds"],
            "accuracy": metrics["sparse_categorical_accuracy"],
            "own": info.get("timings", {}).get("own", float("nan")),
            "background": info.get("timings", {}).get("background", 0.0)}


def startup(env: dict, args: list[str], times: int = 5) -> float:
    """Median wall time of ``trainctl ARGS`` (console entry, as a user runs it)."""
    walls = []
    for _ in range(times):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "trainctl", *args], cwd=ROOT, env=env,
                       capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="--set for trainctl's default arm (repeatable)")
    parser.add_argument("--custom-loop", action="store_true")
    parser.add_argument("--plain-knobs", action="store_true")
    parser.add_argument("--seed", type=int, default=1, help="round k uses seed SEED + k - 1")
    args = parser.parse_args()
    data_dir = Path(os.environ.get("TRAINCTL_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    env = bench_env(data_dir)
    arms = {"script": lambda runs, seed: script_arm(env, data_dir / "mnist.npz", seed),
            "trainctl": lambda runs, seed: trainctl_arm(env, runs, args.overrides, seed)}
    if args.plain_knobs:
        arms["trainctl plain knobs"] = lambda runs, seed: trainctl_arm(
            env, runs, [*args.overrides, *PLAIN_KNOBS], seed)
    if args.custom_loop:
        arms["trainctl custom loop"] = lambda runs, seed: trainctl_arm(
            env, runs, [*args.overrides, "fit.loop=custom"], seed)
    results: dict[str, list[dict]] = {name: [] for name in arms}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeats):
            order = list(arms) if round_ % 2 == 0 else list(reversed(arms))
            for name in order:
                results[name].append(arms[name](Path(tmp), args.seed + round_))
                r = results[name][-1]
                own = f"  own {r['own']:5.2f} s" if "own" in r else ""
                print(f"round {round_ + 1} {name:>31}: wall {r['wall']:6.2f} s  fit "
                      f"{r['fit']:6.2f} s  memory {r['memory_mb']:6.0f} MB  "
                      f"accuracy {r['accuracy']:.4f}{own}", flush=True)
    print(f"\nmedians over {args.repeats} rounds (ratio: script / arm, > 1 means faster)")
    base = {k: statistics.median(r[k] for r in results["script"])
            for k in ("wall", "fit", "memory_mb", "accuracy")}
    for name, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in base}
        own = ""
        if "own" in rows[0]:
            share = statistics.median(r["own"] / r["wall"] for r in rows)
            own = (f"  own {statistics.median(r['own'] for r in rows):.2f} s ({share:.1%} of "
                   f"wall; its writer thread {statistics.median(r['background'] for r in rows):.2f}"
                   " s beside the training)")
        print(f"{name:>31}: wall {med['wall']:6.2f} s ({base['wall'] / med['wall']:.2f}x)  "
              f"fit {med['fit']:6.2f} s ({base['fit'] / med['fit']:.2f}x)  "
              f"memory {med['memory_mb']:6.0f} MB  accuracy {med['accuracy']:.4f}{own}")
    print(f"\ntrainctl --help: {startup(env, ['--help']):.3f} s; trainctl validate "
          f"configs/mnist.yaml: {startup(env, ['validate', 'configs/mnist.yaml']):.3f} s "
          "(medians of 5)")


if __name__ == "__main__":
    main()
