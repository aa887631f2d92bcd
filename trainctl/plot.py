"""Learning curves: a run's history (train and ``val_`` of each metric) as a matplotlib
Figure, several runs overlaid, saved as a PNG.

matplotlib is used through its object API with the Agg canvas (no pyplot): nothing
here can open a window or touch pyplot's global figure list, so it is safe inside
a test process and in the background drawer of :mod:`trainctl.run.curves`, which
runs :func:`serve` in a child process.

Example:
    >>> fig = curves_figure([("run-a", load_history(Path("runs/a")))])
    >>> save_png(fig, Path("curves.png"))
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # before anything draws; Figure below never opens a window anyway

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from trainctl.errors import UsageError  # noqa: E402
from trainctl.run.monitor import suggest_logged  # noqa: E402

History = dict[str, list[float]]
# zlib level 1: a third faster than the default 6, and a curves PNG stays ~40 kB
PNG = {"compress_level": 1}
# Logged per epoch, but a setting rather than a learning curve: drawn only when asked.
NOT_A_CURVE = ("learning_rate",)


class NoHistory(UsageError):
    """A run folder without history.json (no epoch finished)."""


def load_history(run_dir: Path) -> History:
    """The run's history.json as ``{key: [one float per epoch]}``.

    Args:
        run_dir: a run folder.

    Raises:
        UsageError: not a run folder, or no epoch finished yet (no history.json).

    Example:
        >>> load_history(Path("runs/mnist-mlp-20261124-101500-3f9a2c"))["loss"]
        [0.34, 0.16]
    """
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise UsageError(f"{run_dir}: not a trainctl run folder (no run.json); pass a folder "
                         "that 'trainctl fit' printed, or see 'trainctl runs list'")
    path = run_dir / "history.json"
    if not path.is_file():
        raise NoHistory(f"{path}: no history yet: the run has not finished an epoch")
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    if not isinstance(history, dict):
        raise UsageError(f"{path}: expected a mapping of metric lists")
    return {str(k): [float(x) for x in v] for k, v in history.items() if isinstance(v, list)}


def base_metrics(history: History) -> list[str]:
    """The curves of a history by metric, ``loss`` first: ``val_loss`` belongs to ``loss``.

    Args:
        history: ``{key: [one float per epoch]}``.

    Example:
        >>> base_metrics({"loss": [1], "acc": [1], "val_loss": [1], "learning_rate": [1]})
        ['loss', 'acc']
    """
    names: list[str] = []
    for key in history:
        name = key[4:] if key.startswith("val_") else key
        if name not in names and name not in NOT_A_CURVE:
            names.append(name)
    return sorted(names, key=lambda n: n != "loss")  # stable: the rest keep history order


def choose_metrics(histories: Sequence[tuple[str, History]], metric: str | None) -> list[str]:
    """The panels to draw: every metric of the runs, or the one ``metric`` names.

    Args:
        histories: ``(label, history)`` per run.
        metric: one metric, with or without ``val_`` (``learning_rate`` works too);
            None: every metric of the runs.

    Raises:
        UsageError: no run logged ``metric``; lists the ones they did.
    """
    known: list[str] = []
    for _, history in histories:
        known += [m for m in base_metrics(history) if m not in known]
    if metric is None:
        return known
    name = metric[4:] if metric.startswith("val_") else metric
    logged = {k for _, h in histories for k in h}
    if name not in logged and f"val_{name}" not in logged:
        choices = sorted(logged)
        raise UsageError(f"--metric {metric}: no run logged it{suggest_logged(metric, choices)}; "
                         f"logged: {', '.join(choices) or 'nothing'}")
    return [name]


def curves_figure(histories: Sequence[tuple[str, History]], metrics: Sequence[str] | None = None,
                  title: str | None = None) -> Figure:
    """A Figure with one panel per metric: each run's train curve (solid) and ``val_``
    curve (dashed, same colour) against the epoch (1-based, as ``fit`` prints it).

    Args:
        histories: ``(label, history)`` per run; the label names its lines.
        metrics: the panels (default: :func:`choose_metrics` of all of them).
        title: the figure's title (default: the label of a single run).

    Returns:
        The Figure; each line's label is the history key (``val_loss``), prefixed with
        ``"<label>: "`` when several runs share the figure.

    Example:
        >>> fig = curves_figure([("a", {"loss": [0.5, 0.3], "val_loss": [0.6, 0.4]})])
        >>> [line.get_label() for line in fig.axes[0].get_lines()]
        ['loss', 'val_loss']
    """
    metrics = list(metrics) if metrics is not None else choose_metrics(histories, None)
    cols = max(1, min(len(metrics), 3))
    rows = max(1, math.ceil(len(metrics) / cols))
    several = len(histories) > 1
    # several runs: one legend under the panels (a colour per run, solid train and dashed
    # validation), as a legend per panel listing every run's lines would cover the curves
    key_cols = max(1, int(PANEL[0] * cols // KEY_WIDTH))
    key_rows = math.ceil((len(histories) + 2) / key_cols) if several else 0
    key_height = KEY_ROW * key_rows
    fig = Figure(figsize=(PANEL[0] * cols, PANEL[1] * rows + TITLE + key_height), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    _fixed_margins(fig, rows, cols, bottom=BOTTOM + key_height)
    for ax, metric in zip(axes, metrics):
        for i, (label, history) in enumerate(histories):
            for key, style in ((metric, "-"), (f"val_{metric}", "--")):
                values = history.get(key)
                if values:
                    ax.plot(range(1, len(values) + 1), values, style, color=f"C{i % 10}",
                            marker="o", markersize=3,
                            label=f"{label}: {key}" if several else key)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        # short tick labels (2.5 and "1e-4" above, not 0.000250) fit the fixed margins
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
        ax.grid(alpha=0.3)
        if not several:
            ax.legend(fontsize=7)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    if several:
        _runs_key(fig, [label for label, _ in histories], key_cols)
    if title or not several and histories:
        fig.suptitle(title or histories[0][0], fontsize=10)
    return fig


# Inches: a panel, the figure title's band, and the margins around and between panels;
# the runs' key: one row's height and one entry's width (a run id at font size 7).
PANEL = (4.6, 3.3)
TITLE = 0.3
LEFT, RIGHT, TOP, BOTTOM, WSPACE, HSPACE = 0.7, 0.2, 0.45, 0.5, 0.7, 0.8
KEY_ROW, KEY_WIDTH = 0.2, 3.0


def _fixed_margins(fig: Figure, rows: int, cols: int, bottom: float = BOTTOM) -> None:
    """Margins set in inches, not measured by ``tight_layout``, which draws the whole
    figure once more (about half the drawing time: the time a completed run waits)."""
    width, height = fig.get_size_inches()
    axis_w = (width - LEFT - RIGHT - WSPACE * (cols - 1)) / cols
    axis_h = (height - TOP - TITLE - bottom - HSPACE * (rows - 1)) / rows
    fig.subplots_adjust(left=LEFT / width, right=1 - RIGHT / width,
                        top=1 - (TOP + TITLE) / height, bottom=bottom / height,
                        wspace=WSPACE / axis_w, hspace=HSPACE / axis_h)


def _runs_key(fig: Figure, labels: Sequence[str], columns: int) -> None:
    """The legend of several runs, under the panels: each run's colour, then the two
    line styles (train solid, validation dashed)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=f"C{i % 10}", marker="o", markersize=3, label=label)
               for i, label in enumerate(labels)]
    handles += [Line2D([], [], color="grey", linestyle=style, label=label)
                for style, label in (("-", "train"), ("--", "validation (val_)"))]
    fig.legend(handles=handles, loc="lower center", ncols=columns, fontsize=7,
               frameon=False, bbox_to_anchor=(0.5, 0.0))


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG through a temp file and a rename (never half a file).

    Args:
        fig: the figure (:func:`curves_figure`).
        path: the PNG to write; returned.

    Example:
        >>> save_png(curves_figure([("a", {"loss": [1.0]})]), Path("curves.png"))
        PosixPath('curves.png')
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, format="png", pil_kwargs=PNG)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def plot_runs(run_dirs: Sequence[Path], metric: str | None = None,
              skipped: list[str] | None = None) -> Figure:
    """The curves of several runs in one Figure (``trainctl plot``).

    Args:
        run_dirs: run folders; each is labelled by its folder name.
        metric: one metric to draw (with or without ``val_``); default: all.
        skipped: when given, a run without history (it failed in its first epoch) is
            left out with a line here, as long as another run has one.

    Raises:
        UsageError: a folder that is not a run, a run without history, an unknown metric.

    Example:
        >>> fig = plot_runs([Path("runs/a"), Path("runs/b")], metric="loss")
    """
    histories, missing = [], []
    for folder in map(Path, run_dirs):
        try:
            histories.append((folder.name, load_history(folder)))
        except NoHistory as exc:
            if skipped is None:
                raise
            missing.append(exc)
    if not histories:
        raise missing[0]
    if skipped is not None:
        skipped += [f"skipped {exc}" for exc in missing]
    return curves_figure(histories, choose_metrics(histories, metric))


# What the figure can be written as, by the output's suffix (matplotlib's own writers).
FORMATS = (".png", ".pdf", ".svg")


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG, PDF or SVG by ``path``'s suffix, through a temp file.

    Raises:
        UsageError: another suffix, or a folder that does not exist.
    """
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise UsageError(f"--output {path}: expected a {', '.join(FORMATS)} file; received "
                         f"{path.suffix or 'no suffix'}")
    if not path.parent.is_dir():
        raise UsageError(f"--output {path}: folder {path.parent} does not exist")
    if path.suffix.lower() == ".png":
        return save_png(fig, path)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, format=path.suffix[1:].lower())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def serve() -> None:
    """The background drawer's child process (:mod:`trainctl.run.curves`); never returns.

    Started while the run trains, under SCHED_IDLE (:mod:`trainctl.run.priority`: the
    import of this module, matplotlib included, takes only CPU time the training leaves
    unused); the fonts are loaded by a first drawing, then the normal priority is back
    and it waits for one JSON request on stdin: ``{"run": run folder, "output": path, "title": str}``.
    It draws the run's history into ``output`` and exits 0. End of input without a
    request (no epoch finished, or the parent died) exits 0 without drawing.
    """
    from trainctl.run.priority import set_idle

    _warm_up()
    set_idle(False)  # ready: when the request comes, the run waits for the drawing
    request = sys.stdin.read()
    if request.strip():
        job = json.loads(request)
        fig = curves_figure([(job["title"], load_history(Path(job["run"])))])
        with open(job["output"], "wb") as fh:  # the parent renames it once this exits 0
            fig.savefig(fh, format="png", pil_kwargs=PNG)
            fh.flush()
            os.fsync(fh.fileno())
    # skip the interpreter's teardown: with matplotlib loaded it takes longer than the
    # drawing, and the run waits for this process to end
    os._exit(0)


def _warm_up() -> None:
    """Draw a figure like the real one to memory: the fonts, glyph caches and renderer
    are then ready when the request comes, so the run waits only for the drawing."""
    import io

    fig = curves_figure([("warm-up", {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6]})])
    fig.savefig(io.BytesIO(), format="png", pil_kwargs=PNG)
