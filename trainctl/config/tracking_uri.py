"""Is ``runtime.tracking.mlflow.uri`` a tracking URI MLflow accepts? Checked by
``trainctl validate`` without importing MLflow (seconds), from the schemes MLflow
registers and the ``mlflow.tracking_store`` entry points of installed plug-ins.

Example:
    >>> mlflow_uri_problem("sqlite:///runs/mlflow.db") is None
    True
"""

from __future__ import annotations

# The tracking-store schemes MLflow itself registers (mlflow/tracking/_tracking_service/
# utils.py); "" is a local folder. Plug-ins add theirs as "mlflow.tracking_store" entry points.
_MLFLOW_SCHEMES = {"", "file", "databricks", "databricks-uc", "uc", "http", "https"}
_MLFLOW_DATABASES = {"sqlite", "postgresql", "mysql", "mssql"}


def mlflow_uri_problem(uri: str) -> str | None:
    """What is wrong with ``runtime.tracking.mlflow.uri`` as an MLflow tracking URI, or None.

    Example:
        >>> mlflow_uri_problem("sqlite:///runs/mlflow.db"), mlflow_uri_problem("htp:/x")
        (None, "unknown MLflow tracking URI scheme 'htp'")
    """
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if len(scheme) == 1:  # a Windows drive: C:\mlruns
        scheme = ""
    database = scheme.split("+", 1)[0]
    if scheme in ("http", "https") and not parsed.netloc:
        return f"an {scheme} URI needs a host: {scheme}://host[:port]"
    if database in _MLFLOW_DATABASES:
        if scheme.count("+") > 1 or not uri[len(scheme) + 1:].startswith("//"):
            return (f"a database URI is {database}[+driver]://..."
                    + (" (sqlite:///relative/path.db or sqlite:////absolute/path.db)"
                       if database == "sqlite" else ""))
        return None
    if scheme in _MLFLOW_SCHEMES:
        return None
    from importlib.metadata import entry_points

    if scheme in {e.name for e in entry_points(group="mlflow.tracking_store")}:
        return None
    return f"unknown MLflow tracking URI scheme {parsed.scheme!r}"
