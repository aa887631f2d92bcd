"""trainctl.run.start: model.png drawn by a background Graphviz process, collected safely."""

from __future__ import annotations

import os
import stat
import time

import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("pydot")
from trainctl.artifacts import RunDir  # noqa: E402
from trainctl.run.start import plot_model, settle  # noqa: E402

# Stand-ins for Graphviz's dot: $1.. are dot's arguments (-Tpng -o FILE), the graph on stdin.
FAKE_DOTS = {
    "failing": 'cat >/dev/null; echo "Error: syntax error in line 1" >&2; exit 3',
    # more than a pipe holds on stderr before writing: must not block
    "chatty": 'cat >/dev/null; head -c 200000 /dev/zero | tr "\\0" w >&2; '
              'printf "PNG" > "$3"',
    "hung": 'cat >/dev/null; printf "half" > "$3"; sleep 30',
}


@pytest.fixture
def model():
    inputs = keras.Input((3,), name="x")
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(inputs))


def fake_dot(tmp_path, monkeypatch, kind: str) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "dot"
    script.write_text(f"#!/bin/sh\n{FAKE_DOTS[kind]}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize("kind", ["failing", "chatty", "hung"])
def test_graphviz_trouble_never_leaves_a_broken_png_or_blocks(tmp_path, monkeypatch, model,
                                                             kind):
    fake_dot(tmp_path, monkeypatch, kind)
    run = RunDir.create(tmp_path / "runs", "plot")
    assert plot_model(model, run) is None  # started
    started = time.perf_counter()
    notes = settle(run, timeout=2.0)
    assert time.perf_counter() - started < 10
    if kind == "chatty":
        assert notes == [] and run.file("model.png").read_text() == "PNG"
    else:
        assert not run.file("model.png").exists()
        assert notes == [{"failing": "model.png not written: Graphviz's dot exited 3: Error: syntax "
                                     "error in line 1",
                          "hung": "model.png not written: Graphviz's dot took over 2 s"}[kind]]
    assert not [p.name for p in run.path.iterdir() if ".tmp" in p.name]
    assert run.background == []
