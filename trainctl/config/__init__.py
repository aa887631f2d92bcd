"""Config loading in one fixed order: file, ``extends``, ``--set``, validate, freeze.

Example:
    >>> cfg = load_config("configs/mnist.yaml", overrides=["fit.epochs=1"])
    >>> cfg.experiment.fit.epochs
    1
    >>> cfg.locate("fit.epochs")          # where that value came from
    Location(file='--set fit.epochs=1', line=0, col=0)
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


@contextmanager
def _without_pydantic_plugins() -> Iterator[None]:
    """Define trainctl's schema without pydantic's plugin lookup.

    pydantic looks for plugins (observability hooks such as logfire) when its first
    model class is made, by scanning every installed package's entry points: 20-45 ms
    with TensorFlow's dependencies installed (a tenth of trainctl's start-up or more),
    for hooks that have no business in a config schema. The lookup is not cached while
    disabled, so a user's own pydantic models still find their plugins.
    """
    before = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYDANTIC_DISABLE_PLUGINS"]
        else:
            os.environ["PYDANTIC_DISABLE_PLUGINS"] = before


with _without_pydantic_plugins():
    from pydantic import ValidationError

    from trainctl.config.extends import load_with_extends
    from trainctl.config.overrides import apply_overrides
    from trainctl.config.schema import Experiment
    from trainctl.config.source import SourceMap, format_key, parse_key
    from trainctl.errors import ConfigError, ConfigErrors, Location

__all__ = ["LoadedConfig", "load_config", "validate_data", "Experiment", "format_key",
           "parse_key"]


@dataclass(frozen=True)
class LoadedConfig:
    """A validated, frozen experiment with the provenance of every value.

    Args:
        experiment: the frozen pydantic model.
        raw: the resolved config as plain data (what ``config.yaml`` stores).
        path: the config file as given.
        overrides: the ``--set`` options applied, in order.
        source: a :class:`SourceMap` of value positions.
    """

    experiment: Experiment
    raw: dict
    path: Path
    overrides: tuple[str, ...] = ()
    source: SourceMap = field(default=None, repr=False)  # type: ignore[assignment]
    base_dir: Path | None = None

    @property
    def config_dir(self) -> Path:
        """The folder relative paths start from: the config's own, or ``base_dir``
        for a run's saved config.yaml (whose paths are relative to the original)."""
        return self.base_dir or self.path.parent

    def locate(self, key: str | tuple) -> Location:
        """The file position (or ``--set`` option) that gave ``key``."""
        return self.source.locate(key)

    @property
    def run_name(self) -> str:
        """``name:`` or the config file's stem."""
        return self.experiment.name or self.path.stem


def resolve(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[dict, SourceMap]:
    """Steps 1-3: read the file, merge its ``extends`` chain, apply ``--set``."""
    data, where = load_with_extends(Path(path))
    data = apply_overrides(data, list(overrides), where)
    return data, where


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
                *, semantic: bool = True, base_dir: Path | None = None) -> LoadedConfig:
    """Load, merge, override, validate and freeze a config.

    Args:
        path: the YAML file.
        overrides: ``--set`` options (``"fit.epochs=3"``), applied in order.
        semantic: also check component names, arguments and the layer graph
            against the catalog (no TensorFlow import).
        base_dir: the folder relative paths start from (default: the file's).

    Raises:
        ConfigError / ConfigErrors: with file:line:col and key for each problem.
    """
    path = Path(path)
    data, where = resolve(path, overrides)
    return validate_data(data, path, where, overrides=overrides, semantic=semantic,
                         base_dir=base_dir)


def validate_data(data: dict, path: Path, where: SourceMap, *,
                  overrides: list[str] | tuple[str, ...] = (), semantic: bool = True,
                  base_dir: Path | None = None) -> LoadedConfig:
    """Steps 4-5: validate resolved config data against the schema (and the catalog), freeze.

    Args:
        data: the resolved config (:func:`resolve`).
        path: the config file it came from; ``where``: its value positions.

    Raises:
        ConfigError / ConfigErrors: with file:line:col and key for each problem.
    """
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        # only a config with schema errors needs the translation to file:line messages
        from trainctl.config.errors_map import translate

        _raise_all(translate(exc, data, where, Experiment))
    loaded = LoadedConfig(experiment, data, path, tuple(overrides), where, base_dir)
    if semantic:
        from trainctl.config.validate import check_semantics

        _raise_all(check_semantics(loaded))
    return loaded


def _raise_all(errors: list[ConfigError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)
