"""Console output shared by the commands (no TensorFlow import)."""

from __future__ import annotations


def format_metrics(logs: dict | None) -> str:
    """``loss: 0.3412 - acc: 0.9012 - val_loss: ...``: at least 4 decimals, small values in
    exponent form; ``loss`` first, then the other training values, then validation's
    (Keras 3 sorts its logs by name: a multi-output model's ``loss`` came mid-line)."""
    parts = []
    logs = logs or {}
    for key in sorted(logs, key=lambda k: (k.startswith("val_"), k.removeprefix("val_") != "loss")):
        value = float(logs[key])
        text = f"{value:.4e}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"
        parts.append(f"{key}: {text}")
    return " - ".join(parts)


