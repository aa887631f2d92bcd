"""Saving a Keras model to a ``.keras`` file: atomically, and without Keras's wasted work.

Example:
    >>> save_keras(model, run.file("checkpoints") / "last.keras")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Keras's saving walks each object's attributes, skipping those of a plain reference
# object of its kind (a bare Layer, Optimizer, Metric, ...). It builds that skip set
# by making the reference objects and means to cache it in its global state, but
# stores it under "saving_attr_skipset_<kind>" and looks it up under
# "saving_attr_skiplist_<kind>" (Keras 3.15, keras/src/saving/saving_lib.py,
# get_attr_skipset): every save makes the reference objects again, 15-25 ms of a
# small model's 30-50 ms save, at every epoch's checkpoint.
_STORED, _LOOKED_UP = "saving_attr_skipset_", "saving_attr_skiplist_"


def save_keras(model: Any, target: Path) -> None:
    """``model.save`` to ``target`` through a temp file and a rename, like every run file;
    a failed save leaves neither a temp file nor a half-written ``target``.

    Args:
        model: the model to save.
        target: the ``.keras`` file.

    Example:
        >>> save_keras(model, Path("runs/x/model.keras"))
    """
    target = Path(target)
    tmp = target.with_name(f".{target.stem}.tmp{target.suffix}")
    try:
        model.save(tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    reuse_skipsets()


def reuse_skipsets() -> int:
    """Make the skip sets Keras's last save computed findable by the next save (see
    ``_STORED``); returns how many were added. Does nothing on a Keras without the
    mismatch: the sets are then found already, or stored under other names."""
    try:
        from keras.src.backend.common import global_state
    except ImportError:
        return 0
    tracker = getattr(global_state, "GLOBAL_STATE_TRACKER", None)
    attributes = getattr(tracker, "__dict__", {})
    added = 0
    for name, skipset in list(attributes.items()):
        if name.startswith(_STORED) and isinstance(skipset, set):
            cached = _LOOKED_UP + name[len(_STORED):]
            if cached not in attributes:
                global_state.set_global_attribute(cached, skipset)
                added += 1
    return added
