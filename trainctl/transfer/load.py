"""``model.weights_from``: copy trained weights into a new model, layer by layer by name.

Keras 3 loads a ``.weights.h5`` by position and has no by-name loading for its
own formats (KERAS3_NOTES). trainctl matches names itself: it reads the
source's layers by the names stored in its weights file
(:mod:`trainctl.transfer.groups`), writes the new model's own weights to a
temporary file, overwrites there the layers whose names and shapes match, and
loads that file back with ``model.load_weights``. The file has the new model's
own layout, so Keras's positional load puts every array where it belongs, and
the copied arrays are bit-identical to the source's.

A layer whose name matches but whose shapes differ is an error naming both
(exit 2, before the run folder exists) unless ``skip_mismatch: true``; a layer
the source does not have keeps its fresh weights (a new head). What was loaded
and what was not is printed and kept for run.json.

Example:
    >>> record = load_weights_from(model, cfg, smoke=False)
    >>> record["loaded"], record["not_loaded"]
    (['dense_1', 'dense_2'], {'head': 'no layer of that name in the source'})
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from trainctl.errors import ConfigError
from trainctl.transfer.groups import layer_paths, open_weights, read_layers
from trainctl.transfer.source import KEY, MissingSource, Source, parts, resolve

NOT_IN_SOURCE = "no layer of that name in the source"


def load_weights_from(model: Any, cfg: Any, *, smoke: bool,
                      initial_epoch: int = 0) -> Optional[dict]:
    """Start ``model`` from the config's ``model.weights_from``; the record for run.json.

    Args:
        model: the built (and compiled) model.
        cfg: the :class:`trainctl.config.LoadedConfig`.
        smoke: a smoke run: a missing source is skipped with a note (SPEC §6).
        initial_epoch: > 0 when resuming: the run's own saved state replaces these
            weights, so the source is not read (it may be gone by then).

    Returns:
        None without ``weights_from`` (or when resuming), else what was loaded.

    Raises:
        ConfigError: a bad or (outside --smoke) missing source, a shape mismatch, or
            a source sharing no layer name with the model.

    Example:
        >>> load_weights_from(model, cfg, smoke=False)["loaded"]
        ['dense_1', 'dense_2', 'predictions']
    """
    value = cfg.experiment.model.weights_from
    if value is None or initial_epoch > 0:
        return None
    try:
        source = resolve(value, config_dir=cfg.config_dir, locate=cfg.locate)
    except MissingSource as exc:
        if not smoke:
            raise
        print(f"note: {KEY}: {exc.message}; --smoke goes on from freshly initialised weights",
              flush=True)
        return {"given": parts(value)[0], "skipped": f"--smoke: {exc.message}"}
    where = cfg.locate(parts(value)[3])
    record = copy_by_name(model, source, where=where)
    for line in report_lines(record):
        print(line, flush=True)
    return record


def copy_by_name(model: Any, source: Source, *, where: Any = None) -> dict:
    """Copy every layer of ``source`` whose name and shapes match one of ``model``'s.

    Args:
        model: a built Keras model.
        source: the resolved source (:func:`trainctl.transfer.source.resolve`).
        where: the config location for error messages.

    Returns:
        ``{given, source, run, checkpoint, sha256, loaded, not_loaded, unused}``.

    Raises:
        ConfigError: a shape mismatch (without ``skip_mismatch``), an unreadable source,
            or no layer loaded at all.

    Example:
        >>> copy_by_name(model, resolve("base.keras", config_dir=Path("."), locate=loc))
    """
    theirs = read_source(source, where=where)
    folder = Path(tempfile.mkdtemp(prefix="trainctl-weights-"))
    try:
        own_file = folder / "model.weights.h5"
        model.save_weights(own_file)
        with open_weights(own_file, "weights", mode="r+") as h5:
            mine = in_model_order(read_layers(h5, arrays=False), model)
            loaded, not_loaded = match(theirs, mine, source, where=where)
            paths = layer_paths(h5)
            for name in loaded:
                for sub, array in theirs[name].items():
                    h5[f"{paths[name]}/{sub}"][...] = array
        model.load_weights(own_file)  # the model's own layout: Keras's positions fit
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"given": source.given, "source": str(source.file),
            "run": str(source.run) if source.run else None, "checkpoint": source.checkpoint,
            "sha256": sha256(source.file), "loaded": loaded, "not_loaded": not_loaded,
            "unused": [n for n in theirs if n not in mine]}


def in_model_order(layers: dict[str, Any], model: Any) -> dict[str, Any]:
    """``layers`` (by name) in the order of ``model.layers``: the order the log lists them."""
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    return dict(sorted(layers.items(), key=lambda kv: order.get(kv[0], len(order))))


def read_source(source: Source, *, where: Any) -> dict[str, dict[str, np.ndarray]]:
    """The source's layers with their arrays, by name.

    Raises:
        ConfigError: the file cannot be read, or it names no layers (an older Keras).
    """
    try:
        with open_weights(source.file, source.kind) as h5:
            layers = read_layers(h5)
    except Exception as exc:  # noqa: BLE001 - h5py/zipfile raise many kinds for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot read the weights in {source.file}: {first}", key=KEY,
                          where=where, hint="the file is truncated or corrupt, or not a "
                                            "Keras 3 file") from None
    if not layers:
        raise ConfigError(f"{source.file} holds no named layers (a file written by an older "
                          "Keras, or a model without weights)", key=KEY, where=where,
                          hint="load it with Keras 3 and save it again (model.save(...keras))")
    return layers


def shapes(layer: dict[str, tuple]) -> str:
    """``(64, 10), (10,)``: a layer's variable shapes, in Keras's order."""
    return ", ".join(str(shape) for shape in layer.values())


def match(theirs: dict[str, dict], mine: dict[str, dict], source: Source, *,
          where: Any) -> tuple[list[str], dict[str, str]]:
    """Which of ``mine`` (name -> shapes) load from ``theirs`` (name -> arrays).

    Returns:
        ``(loaded names, {not loaded name: why})``, in the model's order.

    Raises:
        ConfigError: a name whose shapes differ (unless ``skip_mismatch``); nothing loads.
    """
    loaded, not_loaded, clashes = [], {}, []
    for name, own in mine.items():
        if name not in theirs:
            not_loaded[name] = NOT_IN_SOURCE
            continue
        got = {k: tuple(np.shape(v)) for k, v in theirs[name].items()}
        if got == own:
            loaded.append(name)
            continue
        why = (f"layer {name!r}: the source's weights have shapes {shapes(got)}, this "
               f"model's {shapes(own)}")
        clashes.append(why)
        not_loaded[name] = f"shapes differ: source {shapes(got)}, model {shapes(own)}"
    if clashes and not source.skip_mismatch:
        raise ConfigError("; ".join(clashes), key=KEY, where=where,
                          hint=f"give the new layer another name to start it afresh, or set "
                               f"{KEY}: {{path: {source.given}, skip_mismatch: true}}")
    if not loaded:
        raise ConfigError(f"no layer of this model could be loaded from {source.file}: "
                          f"the model's layers with weights are {', '.join(mine) or 'none'}; "
                          f"the source's are {', '.join(theirs)}", key=KEY, where=where,
                          hint="layers are matched by name: give the layers to load the "
                               "names they have in the source")
    return loaded, not_loaded


def report_lines(record: dict) -> list[str]:
    """What the run's log says about the weights it started from."""
    at = f" ({record['checkpoint']})" if record.get("checkpoint") else ""
    lines = [f"weights_from: {record['source']}{at}",
             f"  loaded {len(record['loaded'])} layer(s): {', '.join(record['loaded'])}"]
    if record["not_loaded"]:
        lines.append(f"  not loaded {len(record['not_loaded'])} layer(s): " + "; ".join(
            f"{name} ({why})" for name, why in record["not_loaded"].items()))
    if record["unused"]:
        lines.append(f"  not used from the source: {', '.join(record['unused'])}")
    return lines


def sha256(path: Path) -> str:
    """The file's SHA-256, read in chunks (a source may be large)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
