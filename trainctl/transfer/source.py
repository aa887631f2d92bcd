"""Where ``model.weights_from`` points: a run folder, a ``.keras`` or a ``.weights.h5`` file.

No TensorFlow here: ``trainctl validate`` checks the source with it, and ``fit``
resolves it the same way before loading. Paths are relative to the config file's
folder, as ``data.path`` is. A path with a glob (``../../runs/mnist-mlp-*``) takes
the newest completed run that matches, so an example config can name "the MNIST
run you trained" without knowing its time stamp; the run records which one it took.

Example:
    >>> src = resolve(cfg.experiment.model.weights_from, config_dir=cfg.config_dir,
    ...               locate=cfg.locate)
    >>> src.file
    PosixPath('/repo/runs/mnist-mlp-20261124-101500-3f9a2c/model.keras')
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from trainctl.errors import ConfigError, Location

KEY = "model.weights_from"
CHECKPOINTS = {"final": "model.keras", "best": "checkpoints/best.keras",
               "last": "checkpoints/last.keras"}
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK"


class MissingSource(ConfigError):
    """The source does not exist (yet): ``fit --smoke`` goes on without it (SPEC §6)."""


@dataclass(frozen=True)
class Source:
    """A resolved ``model.weights_from``.

    Args:
        given: the path as the config wrote it.
        file: the file holding the weights (a run's model.keras or checkpoint, or the file).
        kind: ``keras`` (a .keras archive) or ``weights`` (a .weights.h5 file).
        run: the run folder, when the source is a run.
        checkpoint: ``final``, ``best`` or ``last`` for a run; None for a file.
        skip_mismatch: layers whose shapes differ are skipped instead of failing.
    """

    given: str
    file: Path
    kind: str
    run: Optional[Path] = None
    checkpoint: Optional[str] = None
    skip_mismatch: bool = False


def parts(value: Any) -> tuple[str, Optional[str], bool, str]:
    """``(path, checkpoint, skip_mismatch, key of the path)`` of a string or a mapping.

    Example:
        >>> parts("runs/x")
        ('runs/x', None, False, 'model.weights_from')
    """
    if isinstance(value, str):
        return value, None, False, KEY
    return value.path, value.checkpoint, value.skip_mismatch, f"{KEY}.path"


def resolve(value: Any, *, config_dir: Path, locate: Callable[[str], Location]) -> Source:
    """The file ``model.weights_from`` names, checked without opening it as a model.

    Args:
        value: the config's ``model.weights_from`` (a string or a ``WeightsFrom``).
        config_dir: the folder relative paths start from.
        locate: ``key -> Location`` for the messages.

    Raises:
        MissingSource: nothing at that path (or no completed run matches the glob).
        ConfigError: something is there but cannot be a source (a folder that is not a
            run, a run without the checkpoint asked for, another kind of file, ...).
    """
    given, checkpoint, skip, key = parts(value)
    where = locate(key)
    full = Path(given).expanduser()
    if not full.is_absolute():
        full = Path(config_dir) / full
    relative = ("relative paths start at the config file's folder "
                f"({Path(config_dir).resolve()}); pass another with --set {KEY}=PATH")
    if any(c in given for c in "*?["):
        full = newest_run(full, checkpoint or "final", given=given, key=key, where=where,
                          hint=relative)
    if not full.exists():
        raise MissingSource(f"not found: {full.resolve()}", key=key, where=where,
                            hint=f"train the source first, or fix the path; {relative}")
    if full.is_dir():
        return run_source(full, given, checkpoint, skip, key=key, where=where)
    if checkpoint is not None:
        at = f"{KEY}.checkpoint"
        raise ConfigError(f"checkpoint: {checkpoint} needs a run folder; {given!r} is a file",
                          key=at, where=locate(at), hint="remove checkpoint:, or give the run "
                                                         "folder as path")
    return Source(given, full.resolve(), file_kind(full, key=key, where=where),
                  skip_mismatch=skip)


def newest_run(pattern: Path, checkpoint: str, *, given: str, key: str, where: Location,
               hint: str) -> Path:
    """The newest completed run folder matching ``pattern`` that has ``checkpoint``.

    Raises:
        MissingSource: no such run.
    """
    runs = [Path(p) for p in glob.glob(str(pattern))
            if (Path(p) / CHECKPOINTS[checkpoint]).is_file()
            and run_status(Path(p)) == "completed"]
    if not runs:
        raise MissingSource(f"no completed run matches {given!r} (looked for "
                            f"{pattern.resolve()})",
                            key=key, where=where, hint=f"train the source first; {hint}")
    return max(runs, key=lambda p: ((p / CHECKPOINTS[checkpoint]).stat().st_mtime, p.name))


def run_status(folder: Path) -> Optional[str]:
    """A run folder's status from its run.json; None when it has none (or it is unreadable)."""
    try:
        return json.loads((folder / "run.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def run_source(folder: Path, given: str, checkpoint: Optional[str], skip: bool, *, key: str,
               where: Location) -> Source:
    """A run folder as a source: its model.keras, or the checkpoint asked for."""
    if not (folder / "run.json").is_file():
        raise ConfigError(f"{folder.resolve()} is a folder but not a trainctl run (no run.json)",
                          key=key, where=where,
                          hint="give a folder that 'trainctl fit' printed, a .keras or a "
                               ".weights.h5 file")
    name = CHECKPOINTS[checkpoint or "final"]
    file = folder / name
    if not file.is_file():
        status = run_status(folder)
        fix = ("only a completed run has model.keras: finish it with trainctl resume, or "
               "take checkpoint: last" if name == "model.keras" else
               "best.keras is written when the monitored value improves; take checkpoint: "
               "last or final")
        raise ConfigError(f"the run {folder.resolve()} has no {name} (its status is "
                          f"{status!r})", key=key, where=where, hint=fix)
    file_kind(file, key=key, where=where)
    return Source(given, file.resolve(), "keras", run=folder.resolve(),
                  checkpoint=checkpoint or "final", skip_mismatch=skip)


def file_kind(file: Path, *, key: str, where: Location) -> str:
    """``keras`` or ``weights`` by the file's name, checked against its first bytes.

    Raises:
        ConfigError: another kind of file, or one whose content is not what its name says.
    """
    name = file.name
    if name.endswith(".weights.h5"):
        kind, magic, what = "weights", HDF5_MAGIC, "an HDF5 file"
    elif name.endswith(".keras"):
        kind, magic, what = "keras", ZIP_MAGIC, "a zip archive"
    else:
        legacy = (" (a legacy Keras 2 .h5 file: load it with Keras and save it again as "
                  ".keras)" if name.endswith(".h5") else "")
        raise ConfigError(f"expected a run folder, a .keras or a .weights.h5 file; received "
                          f"{file.resolve()}{legacy}", key=key, where=where)
    try:
        with file.open("rb") as fh:
            head = fh.read(len(magic))
    except OSError as exc:
        raise ConfigError(f"cannot read {file.resolve()}: {exc.strerror or exc}", key=key,
                          where=where) from None
    if head != magic:
        suffix = ".keras" if kind == "keras" else ".weights.h5"
        raise ConfigError(f"{file.resolve()} is not {what}, as a {suffix} file must be: it is "
                          "truncated, corrupt or misnamed", key=key, where=where)
    return kind


def require(cfg: Any) -> None:
    """Check a loaded config's ``model.weights_from`` (nothing when unset): ``trainctl validate``.

    Args:
        cfg: a :class:`trainctl.config.LoadedConfig`.

    Raises:
        MissingSource / ConfigError: as :func:`resolve`.

    Example:
        >>> require(load_config("configs/examples/finetune.yaml"))
    """
    value = cfg.experiment.model.weights_from
    if value is not None:
        resolve(value, config_dir=cfg.config_dir, locate=cfg.locate)
