"""Learning curves: curves.png written beside the training (trainctl.run.curves), the
Figure of ``trainctl plot`` (its lines carry the history), and the command's errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import tiny_config
from trainctl.artifacts import RunDir
from trainctl.cli import cli

SYNTH = tiny_config("synth", seed=5, epochs=3)


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def fit(config: Path, runs: Path, *sets: str) -> Path:
    result = invoke("fit", config, "--runs-dir", runs, *(x for s in sets for x in ("--set", s)))
    assert result.exit_code == 0, result.output
    return runs / result.output.strip().splitlines()[-1].split("/")[-1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two tiny runs (3 and 2 epochs); runtime.plots is left at its default."""
    folder = tmp_path_factory.mktemp("plot")
    config = folder / "synth.yaml"
    config.write_text(SYNTH, encoding="utf-8")
    return {"three": fit(config, folder / "runs"),
            "two": fit(config, folder / "runs", "fit.epochs=2", "seed=6")}


def history(run: Path) -> dict:
    return json.loads((run / "history.json").read_text())


def test_fit_writes_curves_png_of_a_completed_run(runs):
    import matplotlib.image

    image = matplotlib.image.imread(runs["three"] / "curves.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 300
    info = json.loads((runs["three"] / "run.json").read_text())
    assert info["status"] == "completed" and not info.get("notes")
    assert not list(runs["three"].glob(".curves*"))  # no temp file left behind
    # (runtime.plots: false and smoke runs: test_runs.py's runs and the test below)


def test_plot_figure_lines_carry_each_runs_history(runs):
    from trainctl.plot import plot_runs

    fig = plot_runs([runs["three"], runs["two"]])
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert set(panels) == {"loss", "sparse_categorical_accuracy"}  # learning_rate: not a curve
    for run in (runs["three"], runs["two"]):
        logged = history(run)
        for metric, ax in panels.items():
            lines = {line.get_label(): line for line in ax.get_lines()}
            for key in (metric, f"val_{metric}"):
                line = lines[f"{run.name}: {key}"]
                assert list(line.get_ydata()) == pytest.approx(logged[key])
                assert list(line.get_xdata()) == list(range(1, len(logged[key]) + 1))
        lines = {line.get_label(): line for line in panels["loss"].get_lines()}
        train, val = lines[f"{run.name}: loss"], lines[f"{run.name}: val_loss"]
        assert train.get_color() == val.get_color() and val.get_linestyle() == "--"
    colors = {line.get_color() for line in panels["loss"].get_lines()}
    assert len(colors) == 2  # one colour per run
    # one key under the panels, none on them (a legend per panel covered the curves)
    assert all(ax.get_legend() is None for ax in panels.values())
    (key,) = fig.legends
    entries = {t.get_text(): h for t, h in zip(key.get_texts(), key.legend_handles)}
    assert set(entries) == {runs["three"].name, runs["two"].name, "train", "validation (val_)"}
    assert entries[runs["two"].name].get_color() == lines[f"{runs['two'].name}: loss"].get_color()
    renderer = fig.canvas.get_renderer()
    key_top = key.get_window_extent(renderer).y1
    assert all(ax.get_tightbbox(renderer).y0 >= key_top for ax in panels.values())


def test_plot_command_one_metric_to_a_file(runs, tmp_path):
    out = tmp_path / "cmp.png"
    result = invoke("plot", runs["three"], runs["two"], "--metric", "val_loss", "--output", out)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out) and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from trainctl.plot import plot_runs

    fig = plot_runs([runs["three"]], metric="val_loss")
    [ax] = [ax for ax in fig.axes if ax.get_visible()]
    assert ax.get_title() == "loss"
    assert [line.get_label() for line in ax.get_lines()] == ["loss", "val_loss"]


@pytest.mark.parametrize("case", ["metric", "keras 2", "not a run", "no history", "no folder",
                                  "suffix"])
def test_plot_command_errors_exit_2(runs, tmp_path, case):
    args = {"metric": [runs["three"], "--metric", "val_acuracy"],
            "keras 2": [runs["three"], "--metric", "val_accuracy"],
            "not a run": [tmp_path],
            "no history": [_without_history(runs["three"], tmp_path)],
            "no folder": [runs["three"], "--output", tmp_path / "nodir" / "x.png"],
            "suffix": [runs["three"], "--output", tmp_path / "x.jpeg"]}[case]
    if "--output" not in args:
        args.append(f"--output={tmp_path / 'x.png'}")
    result = invoke("plot", *args)
    assert result.exit_code == 2, result.output
    expected = {"metric": "--metric val_acuracy: no run logged it",
                "keras 2": "(did you mean 'val_sparse_categorical_accuracy'?)",
                "not a run": "not a trainctl run folder (no run.json)",
                "no history": "no history yet",
                "no folder": f"folder {tmp_path / 'nodir'} does not exist",
                "suffix": "expected a .png, .pdf, .svg file; received .jpeg"}[case]
    assert expected in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.jpeg").exists()


def test_plot_leaves_out_a_run_without_history_beside_others(runs, tmp_path):
    fresh = _without_history(runs["three"], tmp_path)
    out = tmp_path / "cmp.pdf"
    result = invoke("plot", runs["three"], fresh, "--output", out)
    assert result.exit_code == 0, result.output
    assert f"note: skipped {fresh / 'history.json'}: no history yet" in result.stderr
    assert out.read_bytes()[:5] == b"%PDF-"  # the suffix chooses the format


def _without_history(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "fresh-run"
    copy.mkdir()
    (copy / "run.json").write_text((run / "run.json").read_text())
    return copy


# -- the background drawer on its own (a run folder made by hand, no training) -----------------
def fake_run(tmp_path: Path, history_text: str) -> RunDir:
    folder = tmp_path / "fake-20261124-101500-abcdef"
    folder.mkdir()
    (folder / "run.json").write_text('{"status": "running"}')
    (folder / "history.json").write_text(history_text)
    return RunDir(folder)


def test_drawer_draws_once_asked_and_renames(tmp_path):
    from trainctl.run.curves import request_curves, settle_curves, start_curves

    run = fake_run(tmp_path, '{"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]}')
    start_curves(run)
    request_curves(run)
    assert settle_curves(run, keep=True) == []
    assert (run.path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(run.path.glob(".curves*"))


def test_drawer_of_a_run_that_did_not_complete_is_stopped_without_a_file(tmp_path):
    from trainctl.run import curves

    run = fake_run(tmp_path, '{"loss": [0.9]}')
    curves.start_curves(run)
    drawer = curves._drawers[run.path.resolve()]
    assert curves.settle_curves(run, keep=False) == []
    assert drawer.proc.returncode is not None  # reaped, not left running
    assert not (run.path / "curves.png").exists() and not list(run.path.glob(".curves*"))


def test_drawer_failure_is_a_note_naming_the_cause(tmp_path):
    from trainctl.run.curves import request_curves, settle_curves, start_curves

    run = fake_run(tmp_path, "{not json")
    start_curves(run)
    request_curves(run)
    [note] = settle_curves(run, keep=True)
    assert note.startswith("curves.png not written: the drawing process exited 1")
    assert "history.json: cannot read" in note
    assert not (run.path / "curves.png").exists()


def test_drawer_too_slow_is_killed_with_a_note(tmp_path):
    from trainctl.run import curves

    run = fake_run(tmp_path, '{"loss": [0.9]}')
    curves.start_curves(run)
    drawer = curves._drawers[run.path.resolve()]
    [note] = curves.settle_curves(run, keep=True, timeout=0.01)  # still importing matplotlib
    assert note == "curves.png not written: the drawing process took over 0.01 s"
    assert drawer.proc.returncode is not None
    assert not (run.path / "curves.png").exists() and not list(run.path.glob(".curves*"))


def test_smoke_runs_draw_only_when_plots_is_set_explicitly():
    from trainctl.config.schema import RuntimeConfig
    from trainctl.run.curves import wants_curves

    assert wants_curves(RuntimeConfig(), smoke=False)
    assert not wants_curves(RuntimeConfig(), smoke=True)
    assert wants_curves(RuntimeConfig(plots=True), smoke=True)
    assert not wants_curves(RuntimeConfig(plots=False), smoke=False)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_drawer_imports_under_sched_idle_until_the_run_waits_for_it(tmp_path):
    import time

    from trainctl.run import curves

    run = fake_run(tmp_path, '{"loss": [0.9]}')
    curves.start_curves(run)
    pid = curves._drawers[run.path.resolve()].proc.pid
    deadline = time.monotonic() + 10
    while os.sched_getscheduler(pid) != os.SCHED_IDLE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert os.sched_getscheduler(pid) == os.SCHED_IDLE  # matplotlib's import: idle CPU only
    curves.request_curves(run)
    assert os.sched_getscheduler(pid) == os.SCHED_OTHER  # the run waits: normal priority
    assert curves.settle_curves(run, keep=True) == []
    assert (run.path / "curves.png").is_file()


def test_the_last_planned_epoch_asks_for_the_drawing_at_once(tmp_path):
    """Once epoch 2 of 2 is in history.json the drawing starts (beside the last
    checkpoint, the save and the test evaluation); not after epoch 1."""
    import json

    from trainctl.run import curves
    from trainctl.run.callbacks import HistoryWriter

    run = fake_run(tmp_path, "{}")
    drawing = curves.CurvesCallback(run)
    drawing.on_train_begin()
    drawer = curves._drawers[run.path.resolve()]
    history = HistoryWriter(run)
    history.set_params({"epochs": 2})
    history.on_epoch_end(0, {"loss": 0.9})
    assert not drawer.requested
    history.on_epoch_end(1, {"loss": 0.5})
    assert drawer.requested
    assert json.loads((run.path / "history.json").read_text()) == {"loss": [0.9, 0.5]}
    assert curves.settle_curves(run, keep=True) == []
    assert (run.path / "curves.png").is_file()
