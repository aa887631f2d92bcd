"""Which configs cannot run in a process where others ran, and the command that runs
one in a fresh ``python -m trainctl`` child instead (``trainctl smoke``, ``validate``).

Two reasons: a device set-up TensorFlow allows only before its first operation
(logical CPUs, several workers, thread pools), and a plug-in module already imported
here from another file (two folders' ``plugins.py``), where ``import`` would hand the
config the other one's code.

Example:
    >>> child_reason(Path("configs/examples/s24_mirrored.yaml")) is None
    True
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from trainctl.errors import TrainctlError


def own_process_reason(cfg) -> str | None:
    """Why a config cannot run after other runs in this process (None: it can).

    Example:
        >>> own_process_reason(load_config("configs/examples/s24_mirrored.yaml")) is None
        True
    """
    runtime = cfg.experiment.runtime
    if runtime.distribution.logical_cpus:
        return "runtime.distribution.logical_cpus"
    if runtime.distribution.strategy == "multi_worker":
        return "runtime.distribution.strategy: multi_worker"
    if runtime.threads.intra_op or runtime.threads.inter_op:
        return "runtime.threads"
    return None


def shared_process_reason(cfg) -> str | None:
    """Why a config cannot run in a process where other configs ran (None: it can):
    a plug-in module it names is already imported here from another file.

    Example:
        >>> shared_process_reason(load_config("mod2/b/b.yaml", semantic=False))
        "plug-in module 'plugins2' is mod2/b/plugins2.py here, but mod2/a/plugins2.py is already imported"
    """
    from trainctl.plugins import module_clash, named_modules

    return module_clash(named_modules(cfg.raw), cfg.config_dir)


def child_reason(path: Path, overrides: tuple[str, ...] | list[str] = ()) -> str | None:
    """Why config ``path`` must run (or be validated) in a child process, read without
    importing a plug-in: :func:`own_process_reason` or :func:`shared_process_reason`.
    None also for a config that does not load: loading it here reports its error."""
    from trainctl.config import load_config

    try:
        cfg = load_config(path, overrides, semantic=False)
    except TrainctlError:
        return None
    return own_process_reason(cfg) or shared_process_reason(cfg)


def child_command(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """``python -m trainctl ARGS`` and its environment: the child imports this very
    trainctl, also when it is not installed (a checkout)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return [sys.executable, "-m", "trainctl", *args], env
