"""trainctl.run.timing: phases add up, and trainctl's own work is their OWN share."""

from __future__ import annotations

import time

import pytest

from trainctl.run import timing


@pytest.fixture(autouse=True)
def fresh():
    timing.reset()
    yield
    timing.reset()


def test_phases_add_up_and_own_is_the_sum_of_own_phases():
    with timing.phase("config"):
        time.sleep(0.02)
    with timing.phase("fit"):
        time.sleep(0.03)
    slow = timing.timed("callbacks", lambda x: time.sleep(x) or "done")
    assert slow(0.01) == "done" and slow(0.01) == "done"
    seconds = timing.timings()
    assert seconds["config"] >= 0.02 and seconds["fit"] >= 0.03
    assert seconds["callbacks"] >= 0.02
    assert seconds["own"] == pytest.approx(seconds["config"] + seconds["callbacks"], abs=0.002)


def test_a_failing_block_still_counts():
    with pytest.raises(ValueError):
        with timing.phase("save"):
            time.sleep(0.01)
            raise ValueError("disk full")
    assert timing.timings()["save"] >= 0.01


def test_reset_starts_afresh():
    with timing.phase("config"):
        pass
    timing.reset()
    assert timing.timings() == {"own": 0.0}


def test_startup_is_counted_for_the_first_run_of_a_process_only(monkeypatch):
    monkeypatch.setattr(timing, "_startup_counted", False)
    timing.add_startup()
    first = timing.timings()["startup"]
    assert first > 0
    timing.reset()
    timing.add_startup()
    assert "startup" not in timing.timings()


def test_the_modules_timed_as_imports_are_ones_tensorflow_imports_anyway():
    """fit times these modules as ``import`` rather than trainctl's own start-up: fair
    only while a plain ``import tensorflow`` imports each of them too."""
    import trainctl
    from conftest import run_python

    names = ", ".join(repr(n) for n in trainctl.SHARED_IMPORTS + timing.TENSORFLOW_IMPORTS)
    out = run_python(f"import sys, tensorflow\nprint([n for n in ({names},) "
                     "if n not in sys.modules])")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
