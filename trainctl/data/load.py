"""``load_splits``: the source's arrays, transformed once, with validation carved out.

Steps, in order: read the source; name list-given inputs/outputs after the
model; apply ``data.features`` / ``data.targets`` to the whole training and
test arrays (one pass each; synthetic data is already model-shaped and skips
them); carve the validation split; keep the test split if ``data.test``.

Validation (``data.validation``, at most one kind):

- ``holdout: N``: the last N training samples, as the Keras guide's
  ``x_train[-10000:]``; the training split keeps the rest (both views, no copy).
  With synthetic data a holdout that would leave no training samples is cut
  to a quarter of them, so any config can smoke-run on synthetic data.
- ``split: f``: the last fraction f, split where ``model.fit(validation_split=f)`` would.
- ``source:`` and/or ``path:``: the training split of another source (default:
  ``data.source``) read from ``path`` (relative to the config file), transformed alike.
- ``use_test: true``: the test split.

Example:
    >>> splits = load_splits(cfg.experiment.data, config_dir=cfg.config_dir,
    ...                      signature=sig, seed=42, locate=cfg.locate)
    >>> len(splits.train), len(splits.validation)
    (50000, 10000)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from trainctl.data.base import RawData
from trainctl.data.sources import load_source
from trainctl.data.transforms import apply_transforms, check_transforms
from trainctl.data.types import Signature, Split, Splits
from trainctl.errors import ConfigError, ConfigErrors, DataError, Location

if TYPE_CHECKING:  # the schema is the contract; importing it here is not needed at run time
    from trainctl.config.schema import DataConfig, Validation

Locate = Callable[[str], Location]


def resolve_path(path: Optional[str], *, config_dir: Path, key: str,
                 locate: Locate) -> Optional[Path]:
    """``path`` relative to the config's folder, made absolute; missing -> DataError."""
    if path is None:
        return None
    full = Path(path).expanduser()
    if not full.is_absolute():
        full = Path(config_dir) / full
    full = full.resolve()
    if not full.exists():
        raise DataError(f"{locate(key)}: {key}: file not found: {full}\n"
                        f"  hint: {key} is relative to the config file's folder "
                        f"({Path(config_dir).resolve()})")
    return full


def require_files(cfg: Any) -> None:
    """``data.path`` and ``data.validation.path`` exist (``trainctl validate``: no loading).

    Raises:
        DataError: a missing file, named with its config key and position.

    Example:
        >>> require_files(load_config("configs/mnist.yaml"))   # no data.path: nothing to check
    """
    data = cfg.experiment.data
    resolve_path(data.path, config_dir=cfg.config_dir, key="data.path", locate=cfg.locate)
    if data.validation is not None:
        resolve_path(data.validation.path, config_dir=cfg.config_dir,
                     key="data.validation.path", locate=cfg.locate)


def name_parts(arrays: Any, names: list[str], what: str) -> Any:
    """A list of arrays (one per model input/output, in model order) -> ``{name: array}``."""
    if not isinstance(arrays, list):
        return arrays
    if len(arrays) != len(names):
        raise DataError(f"{what}: received a list of {len(arrays)} arrays but the model has "
                        f"{len(names)}: {', '.join(names)}; return a dict keyed by name")
    return dict(zip(names, arrays))


def prepare(split: Split, cfg: DataConfig, sig: Signature, *, what: str,
            transform: bool, locate: Locate, key: str = "data.source") -> Split:
    """Name the arrays after the model, check their lengths, apply the transforms.

    ``key`` is the config key of the source the split came from, for messages.
    """
    inputs, outputs = list(sig.inputs), list(sig.outputs)
    where = f"{locate(key)}: {what}"
    split = Split(name_parts(split.x, inputs, f"{where} x"),
                  name_parts(split.y, outputs, f"{where} y"),
                  name_parts(split.sample_weight, outputs, f"{where} sample_weight"))
    split.check_lengths(where)
    if not transform:
        return split
    x = apply_transforms(split.x, list(cfg.features), key="data.features", locate=locate,
                         default_name=inputs[0] if len(inputs) == 1 else None)
    y = apply_transforms(split.y, list(cfg.targets), key="data.targets", locate=locate,
                         default_name=outputs[0] if len(outputs) == 1 else None)
    return Split(x, y, split.sample_weight)


def not_empty(split: Split, *, what: str, key: str, locate: Locate) -> Split:
    """``split``, unless it has 0 samples: then a DataError naming the source's key."""
    if len(split) == 0:
        raise DataError(f"{locate(key)}: {what}: the source gave 0 samples\n"
                        f"  hint: check {key} (and its path): the file or function returned "
                        "empty arrays")
    return split


def validation_kind(val: Validation, locate: Locate) -> Optional[str]:
    """Which kind of validation is asked for; two at once is a ConfigError."""
    kinds = [k for k, on in (("holdout", val.holdout is not None),
                             ("split", val.split is not None),
                             ("source", val.source is not None or val.path is not None),
                             ("use_test", val.use_test)) if on]
    if len(kinds) > 1:
        raise ConfigError(f"give one kind of validation data; received {', '.join(kinds)}",
                          key="data.validation", where=locate("data.validation"),
                          hint="holdout: N, split: fraction, source:/path:, or use_test: true")
    return kinds[0] if kinds else None


def holdout(train: Split, n: int, *, synthetic: bool, locate: Locate) -> tuple[Split, Split]:
    """The last ``n`` samples as validation, the rest for training."""
    total = len(train)
    if n >= total and synthetic:
        n = max(1, total // 4)
    if n >= total:
        key = "data.validation.holdout"
        raise DataError(f"{locate(key)}: {key}: holding out {n} samples leaves none for "
                        f"training: the training split has {total}\n"
                        f"  hint: hold out fewer than {total} samples")
    return train.take(slice(None, total - n)), train.take(slice(total - n, None))


def split_fraction(train: Split, fraction: float, *, locate: Locate) -> tuple[Split, Split]:
    """The last ``fraction`` as validation, cut where Keras's ``validation_split`` cuts."""
    total = len(train)
    at = int(math.floor(total * (1.0 - fraction)))  # keras' train_validation_split
    if at in (0, total):
        key = "data.validation.split"
        raise DataError(f"{locate(key)}: {key}: a split of {fraction} of {total} samples "
                        "leaves one side empty; use more data or another fraction")
    return train.take(slice(None, at)), train.take(slice(at, None))


def _validation_source(cfg: DataConfig, ctx_args: dict, sig: Signature,
                       locate: Locate) -> RawData:
    val = cfg.validation
    path = resolve_path(val.path, config_dir=ctx_args["config_dir"],
                        key="data.validation.path", locate=locate)
    spec, key = ((val.source, "data.validation.source") if val.source is not None
                 else (cfg.source, "data.source"))
    raw = load_source(spec, {**ctx_args, "path": path, "path_key": "data.validation.path"},
                      key=key, locate=locate)
    raw.train = prepare(raw.train, cfg, sig, what="validation data",
                        transform=not raw.shaped_like_model, locate=locate, key=key)
    not_empty(raw.train, what="validation data", key=key, locate=locate)
    return raw


def load_splits(cfg: DataConfig, *, config_dir: Path, signature: Signature,
                seed: Optional[int], locate: Locate) -> Splits:
    """Load ``data:``: the source, its transforms, and the train/validation/test splits.

    Args:
        cfg: the validated ``data`` section.
        config_dir: the config file's folder (``data.path`` is relative to it).
        signature: the compiled model's inputs and outputs.
        seed: the experiment's seed (synthetic data uses it).
        locate: ``key -> Location`` of config values, for messages.

    Raises:
        ConfigError: a bad source name, source argument or transform.
        DataError: missing or unreadable files, arrays that do not fit together.
    """
    errors = (check_transforms(list(cfg.features), key="data.features", locate=locate)
              + check_transforms(list(cfg.targets), key="data.targets", locate=locate))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    kind = validation_kind(cfg.validation, locate) if cfg.validation else None
    ctx_args = dict(path=resolve_path(cfg.path, config_dir=config_dir, key="data.path",
                                      locate=locate),
                    path_key="data.path", config_dir=Path(config_dir), signature=signature,
                    seed=seed)
    raw = load_source(cfg.source, ctx_args, key="data.source", locate=locate)
    files = dict(raw.files)
    transform = not raw.shaped_like_model
    train = prepare(raw.train, cfg, signature, what="training data", transform=transform,
                    locate=locate)
    not_empty(train, what="training data", key="data.source", locate=locate)
    test = (prepare(raw.test, cfg, signature, what="test data", transform=transform,
                    locate=locate) if raw.test is not None else None)
    validation = None
    if kind == "holdout":
        train, validation = holdout(train, cfg.validation.holdout,
                                    synthetic=raw.shaped_like_model, locate=locate)
    elif kind == "split":
        train, validation = split_fraction(train, cfg.validation.split, locate=locate)
    elif kind == "use_test":
        if test is None:
            key = "data.validation.use_test"
            raise DataError(f"{locate(key)}: {key}: source {cfg.source!r} has no test split "
                            "to validate on")
        validation = test
    elif kind == "source":
        val_raw = _validation_source(cfg, ctx_args, signature, locate)
        files.update(val_raw.files)
        validation = val_raw.train
    return Splits(train=train, validation=validation, test=test if cfg.test else None,
                  files=files)
