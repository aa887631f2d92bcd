"""The run directory (SPEC §4): a unique folder, atomic writes, run.json and history.

Example:
    >>> run = RunDir.create(Path("runs"), "mnist-mlp")
    >>> run.write_json("history.json", {"loss": [0.3, 0.1]})
    >>> run.path
    PosixPath('runs/mnist-mlp-20261124-101500-3f9a2c')
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

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


def copy_file(source: Path, target: Path) -> None:
    """``target`` holding what ``source`` holds, through a temp file and a rename.

    A byte copy, not a hard link: Keras's ``model.save`` writes into an existing
    file, so a user saving over model.keras would change a linked checkpoint too.
    """
    target = Path(target)
    tmp = target.with_name(f".{target.name}.copy.tmp")
    try:
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def keep_csv_rows(path: Path, rows: int) -> None:
    """Keep a CSV file's header and its first ``rows`` rows, byte for byte (atomically);
    a missing file stays missing. For resuming: rows of unfinished epochs go.

    Example:
        >>> keep_csv_rows(run.file("history.csv"), 3)
    """
    path = Path(path)
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        atomic_write(path, "".join(lines[:1 + rows]))


def os_reason(exc: OSError) -> str:
    """``"No space left on device"``: the OS's words for an OSError, without the errno noise."""
    return exc.strerror or str(exc) or type(exc).__name__


_FIXES = {
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is used up: free some space",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "you may not write there: fix the folder's permissions",
    errno.EPERM: "you may not write there: fix the folder's permissions",
    errno.ENOTDIR: "part of the path is a file, not a folder",
    errno.EEXIST: "a file has that name",
    errno.ENAMETOOLONG: "the name is too long for the file system: use a shorter name: "
                        "in the config (or --name)",
}


def write_failed(path: Path, exc: OSError, what: str = "write",
                 elsewhere: str = "") -> UsageError:
    """A UsageError naming ``path``, the OS's reason and how to fix it (full disk, read-only...).

    ``elsewhere`` is appended to the hint, e.g. ``"or pass --runs-dir another folder"``.
    """
    fix = _FIXES.get(exc.errno, "check the disk and the folder's permissions")
    hint = f"{fix}; {elsewhere}" if elsewhere else fix
    return UsageError(f"cannot {what} {path}: {os_reason(exc)}\n  hint: {hint}")


_ELSEWHERE = "or pass --runs-dir a folder on a writable disk"


RUN_NAME_HINT = ("set name: in the config (or --name) to letters, digits, '_', '-' or '.', "
                 "starting with a letter or digit")


def check_folder_name(name: str) -> None:
    """Refuse a run name that is not a single, plain folder name inside the runs directory.

    ``../x``, ``/abs``, ``a/b``, ``""``, ``.``, ``..`` and names with control
    characters (a newline) would escape the runs directory or make a folder no
    one can type; the config schema and ``--name`` check the same, this is the
    last line of defence where the folder is made.

    Raises:
        UsageError: naming the rejected name and how to fix it.
    """
    problem = None
    if not isinstance(name, str) or not name:
        problem = "it is empty"
    elif name in (".", ".."):
        problem = f"{name!r} is not a folder name of its own"
    elif "/" in name or os.sep in name or (os.altsep and os.altsep in name):
        problem = "it contains a path separator, so the folder would not be in the runs directory"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        problem = "it contains a control character (a newline, a tab, ...)"
    elif name.startswith(("-", ".")):
        problem = "it starts with '-' or '.'"
    if problem:
        raise UsageError(f"run name {name!r} cannot name a run folder: {problem}\n"
                         f"  hint: {RUN_NAME_HINT}")


def short_id() -> str:
    """The run folder's random suffix: 6 hex digits (24 bits) from the OS's CSPRNG.

    With the second-resolution timestamp before it, two runs started in the same
    second by the same name clash with a chance of 1 in 16.7 million, and a clash is
    detected (exclusive ``mkdir``) and retried with a new id.
    """
    return secrets.token_hex(3)


def _stamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def dump_json(obj: Any) -> str:
    """JSON as trainctl writes it: sorted keys off (order is meaningful), 2-space indent."""
    return json.dumps(obj, indent=2, allow_nan=True) + "\n"


class RunDir:
    """One run's folder and the files in it.

    Args:
        path: the folder (already created).
    """

    ATTEMPTS = 50
    """How many random ids :meth:`create` tries before it gives up."""

    def __init__(self, path: Path):
        self.path = Path(path)
        # trainctl.run.child.FileChild: files another process writes into the folder
        # while the run goes on (model.png by Graphviz); trainctl.run.start.settle
        # collects them.
        self.background: list = []
        # The run folder as messages name it: another folder than ``path`` only on a
        # multi-worker run's other workers, whose files go to a scratch copy.
        self.shown = self.path

    @classmethod
    def create(cls, runs_dir: Path, name: str, *, exact: bool = False) -> "RunDir":
        """Make ``runs_dir/<name>-<timestamp>-<6 hex>/`` (``exact``: ``runs_dir/<name>/``)
        and its ``checkpoints/``.

        Never reuses a folder: ``os.mkdir`` is exclusive (it fails when the folder
        exists, atomically, also between processes), and on a clash a new random id
        is drawn. A small file is then written and removed, so a read-only or full
        disk is found here, before anything of the run is written; on any failure
        the new folder is removed again.

        Raises:
            UsageError: a name that would leave ``runs_dir``, or a runs directory that
                cannot be created or written; the message names the path.
        """
        check_folder_name(name)
        runs_dir = Path(runs_dir)
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocking = next((p for p in (runs_dir, *runs_dir.parents)
                             if p.exists() and not p.is_dir()), None)
            if blocking is not None and exc.errno in (errno.ENOTDIR, errno.EEXIST):
                raise UsageError(f"cannot create the runs directory {runs_dir}: {blocking} is "
                                 f"a file, not a folder\n  hint: pass --runs-dir a folder (one "
                                 "that does not exist yet is created)") from None
            raise write_failed(runs_dir, exc, "create the runs directory", _ELSEWHERE) from None
        stamp = _stamp()
        for _ in range(cls.ATTEMPTS):
            path = runs_dir / (name if exact else f"{name}-{stamp}-{short_id()}")
            try:
                os.mkdir(path)
            except FileExistsError:
                if exact:
                    raise UsageError(f"{path} exists already; an exact run name is used "
                                     "once\n  hint: pass another --name, or resume that "
                                     "run") from None
                continue  # another run took this id: draw again
            except OSError as exc:
                raise write_failed(path, exc, "create the run folder", _ELSEWHERE) from None
            try:
                os.mkdir(path / "checkpoints")
                _probe_write(path)
            except OSError as exc:
                shutil.rmtree(path, ignore_errors=True)
                raise write_failed(path, exc, "write in the run folder", _ELSEWHERE) from None
            return cls(path)
        raise UsageError(f"could not find a free run folder name in {runs_dir} after "
                         f"{cls.ATTEMPTS} random ids\n  hint: pass another --name or --runs-dir")

    def discard(self) -> None:
        """Remove the folder: for a run that fails before it starts (nothing half-written).

        Only for a folder this process just made with :meth:`create`.
        """
        shutil.rmtree(self.path, ignore_errors=True)

    @classmethod
    def open(cls, path: Path) -> "RunDir":
        """An existing run folder; a missing one or one without run.json is a UsageError."""
        path = Path(path)
        if not path.exists():
            raise UsageError(f"{path}: no such run folder; pass a folder that 'trainctl fit' "
                             "printed")
        if not (path / "run.json").is_file():
            raise UsageError(f"{path}: not a trainctl run directory (no run.json); "
                             "pass a folder that 'trainctl fit' printed")
        return cls(path)

    def file(self, name: str) -> Path:
        """Path of a file in the run folder."""
        return self.path / name

    def write_text(self, name: str, text: str) -> None:
        """Atomically write a text file into the run folder.

        Raises:
            UsageError: the file cannot be written (full disk, read-only folder); it names
                the file, and no partial file is left.
        """
        try:
            atomic_write(self.file(name), text)
        except OSError as exc:
            raise write_failed(self.file(name), exc) from None

    def write_json(self, name: str, obj: Any) -> None:
        """Atomically write a JSON file into the run folder (errors as :meth:`write_text`)."""
        self.write_text(name, dump_json(obj))

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the run folder (``flock`` on the folder itself).

        run.json is read, changed and rewritten by :meth:`update_run` and
        :meth:`add_record`; two processes doing that at once (an ``evaluate`` and a
        ``predict`` on the same run) would lose one record without it. No lock
        file is created. Where ``flock`` is missing (Windows) this does nothing.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

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
        """Merge ``fields`` into run.json and rewrite it atomically (under :meth:`locked`)."""
        with self.locked():
            info = self.read_json("run.json") if self.file("run.json").exists() else {}
            info.update(fields)
            self.write_json("run.json", info)
        return info

    def add_record(self, kind: str, record: dict) -> None:
        """Append a record (an evaluate, a predict, ...) to run.json's ``records``."""
        with self.locked():
            info = self.read_json("run.json")
            info.setdefault("records", []).append({"kind": kind, "time": now(), **record})
            self.write_json("run.json", info)


def _probe_write(folder: Path) -> None:
    """Write, flush and remove a small file in ``folder``: OSError if the disk refuses."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".probe.", suffix=".tmp")
    try:
        os.write(fd, b"trainctl\n" * 64)
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(tmp)


def versions() -> dict[str, str]:
    """Versions of python, tensorflow, keras and trainctl (imports TF: call from a run)."""
    import keras
    import tensorflow as tf

    from trainctl import __version__

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "trainctl": __version__}


# git_state results being computed on a thread, by folder (prefetch_git_state)
_git_prefetched: dict[Path, tuple[threading.Thread, list]] = {}


def prefetch_git_state(folder: Path) -> None:
    """Start :func:`git_state` of ``folder`` on a thread: its two git processes then run
    while TensorFlow is imported, and the run folder's git_state takes the answer."""
    key = Path(folder).resolve()
    box: list = []
    thread = threading.Thread(target=lambda: box.append(_git_state(key)), daemon=True)
    thread.start()
    _git_prefetched[key] = (thread, box)


def git_state(folder: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the repository holding ``folder``, or None outside one
    (the answer :func:`prefetch_git_state` started, if it did)."""
    prefetched = _git_prefetched.pop(Path(folder).resolve(), None)
    if prefetched is not None:
        thread, box = prefetched
        thread.join()
        if box:
            return box[0]
    return _git_state(folder)


def _git_state(folder: Path) -> dict[str, Any] | None:
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
