"""The run directory (SPEC §4): a unique folder, atomic writes, run.json and history.

Example:
    >>> run = RunDir.create(Path("runs"), "mnist-mlp")
    >>> run.write_json("history.json", {"loss": [0.3, 0.1]})
    >>> run.path
    PosixPath('runs/mnist-mlp-20261124-101500-3f9a2c')
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from trainctl.errors import UsageError


def now() -> str:
    """Local time as ISO 8601 with offset, to the second."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename: readers never see half a file."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; run files are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def dump_json(obj: Any) -> str:
    """JSON as trainctl writes it: sorted keys off (order is meaningful), 2-space indent."""
    return json.dumps(obj, indent=2, allow_nan=True) + "\n"


class RunDir:
    """One run's folder and the files in it.

    Args:
        path: the folder (already created).
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, runs_dir: Path, name: str) -> "RunDir":
        """Make ``runs_dir/<name>-<timestamp>-<6 hex>/``; never reuses a folder.

        ``os.mkdir`` fails if the folder exists, so concurrent runs cannot share
        one: on a clash a new random id is drawn.
        """
        runs_dir = Path(runs_dir)
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the runs directory {runs_dir}: "
                             f"{exc.strerror or exc}") from None
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        for _ in range(20):
            path = runs_dir / f"{name}-{stamp}-{secrets.token_hex(3)}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise UsageError(f"cannot create a run folder in {runs_dir}: "
                                 f"{exc.strerror or exc}") from None
            (path / "checkpoints").mkdir()
            return cls(path)
        raise UsageError(f"could not find a free run folder name in {runs_dir}")

    @classmethod
    def open(cls, path: Path) -> "RunDir":
        """An existing run folder; a missing one or one without run.json is a UsageError."""
        path = Path(path)
        if not (path / "run.json").is_file():
            raise UsageError(f"{path}: not a trainctl run directory (no run.json); "
                             "pass a folder that 'trainctl fit' printed")
        return cls(path)

    def file(self, name: str) -> Path:
        """Path of a file in the run folder."""
        return self.path / name

    def write_text(self, name: str, text: str) -> None:
        """Atomically write a text file into the run folder."""
        atomic_write(self.file(name), text)

    def write_json(self, name: str, obj: Any) -> None:
        """Atomically write a JSON file into the run folder."""
        atomic_write(self.file(name), dump_json(obj))

    def read_json(self, name: str) -> Any:
        """Read a JSON file of the run; a corrupt one is a UsageError naming it."""
        try:
            return json.loads(self.file(name).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{self.file(name)}: cannot read: {exc}") from None

    def write_config(self, raw: dict) -> None:
        """``config.yaml``: the resolved config after ``extends`` and ``--set``.

        ``extends`` is dropped: its bases are already merged in, and its path was
        relative to the original file, not to the run folder.
        """
        resolved = {k: v for k, v in raw.items() if k != "extends"}
        self.write_text("config.yaml", yaml.safe_dump(resolved, sort_keys=False))

    def update_run(self, **fields: Any) -> dict:
        """Merge ``fields`` into run.json and rewrite it atomically."""
        info = self.read_json("run.json") if self.file("run.json").exists() else {}
        info.update(fields)
        self.write_json("run.json", info)
        return info

    def add_record(self, kind: str, record: dict) -> None:
        """Append a record (an evaluate, a predict, ...) to run.json's ``records``."""
        info = self.read_json("run.json")
        info.setdefault("records", []).append({"kind": kind, "time": now(), **record})
        self.write_json("run.json", info)


def versions() -> dict[str, str]:
    """Versions of python, tensorflow, keras and trainctl (imports TF: call from a run)."""
    import keras
    import tensorflow as tf

    from trainctl import __version__

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "trainctl": __version__}


def git_state(folder: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the repository holding ``folder``, or None outside one."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def command_line() -> list[str]:
    """The command as typed: ``trainctl fit configs/mnist.yaml --set ...``."""
    return ["trainctl", *sys.argv[1:]]
