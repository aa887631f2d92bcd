"""How much faster `trainctl smoke configs/` is than one `trainctl fit --smoke` process
per config (the figure in docs/benchmarks.md, "Smoke runs in one process").

Run: TRAINCTL_DATA_DIR=../shared/datasets python benchmarks/smoke_vs_processes.py
     [PATH ...]   (default: configs/)

Both arms run the same configs (those `trainctl smoke` finds) one after the other,
each into its own temporary runs folder; both wall times and their ratio are
printed. Not a test: figures to read.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner_vs_script import ROOT, bench_env  # noqa: E402  (a sibling)

sys.path.insert(0, str(ROOT))
from trainctl.run.smoke import find_configs  # noqa: E402  (no TensorFlow import)


def run(cmd: list[str], env: dict) -> float:
    """Wall seconds of ``cmd``; exits with its output when it fails."""
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "configs"])
    args = parser.parse_args()
    data_dir = Path(os.environ.get("TRAINCTL_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    env = bench_env(data_dir)
    configs = find_configs(args.paths)
    trainctl = [sys.executable, "-m", "trainctl"]
    with tempfile.TemporaryDirectory() as tmp:
        one = run([*trainctl, "smoke", *map(str, args.paths), "--runs-dir", f"{tmp}/one"], env)
        print(f"trainctl smoke (1 process, {len(configs)} configs): {one:7.1f} s", flush=True)
        many = 0.0
        for config in configs:
            many += run([*trainctl, "fit", str(config), "--smoke", "--runs-dir",
                         f"{tmp}/many"], env)
        print(f"trainctl fit --smoke ({len(configs)} processes):    {many:7.1f} s")
    print(f"ratio (processes / smoke): {many / one:.2f}x "
          f"({(many - one) / len(configs):.1f} s saved per config)")


if __name__ == "__main__":
    main()
