"""Console output shared by the commands (no TensorFlow import)."""

from __future__ import annotations


def format_metrics(logs: dict | None) -> str:
    """``loss: 0.3412 - acc: 0.9012``: at least 4 decimals, small values in exponent form."""
    parts = []
    for key, value in (logs or {}).items():
        value = float(value)
        text = f"{value:.4e}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"
        parts.append(f"{key}: {text}")
    return " - ".join(parts)


