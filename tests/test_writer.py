"""trainctl.run.writer: run files written on a thread beside the training, in order."""

from __future__ import annotations

import threading

import pytest

from trainctl.artifacts import RunDir
from trainctl.run.start import settle
from trainctl.run.writer import BackgroundWriter


def test_jobs_run_in_order_off_the_calling_thread():
    writer = BackgroundWriter()
    done, threads = [], set()

    def job(i):
        threads.add(threading.current_thread().name)
        done.append(i)

    for i in range(5):
        writer.submit(lambda i=i: job(i))
    writer.wait()
    assert done == [0, 1, 2, 3, 4]
    assert threads == {"trainctl-writer"}


def test_a_failed_job_is_raised_once_and_the_jobs_after_it_are_skipped():
    writer = BackgroundWriter()
    ran = []
    writer.submit(lambda: ran.append("first"))
    writer.submit(lambda: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    writer.submit(lambda: ran.append("after the failure"))
    with pytest.raises(OSError, match="No space left"):
        writer.wait()
    assert ran == ["first"]
    writer.wait()  # raised once: the run's status is decided by the first report
    writer.submit(lambda: ran.append("new"))
    writer.wait()
    assert ran == ["first", "new"]


def test_submit_raises_an_earlier_failure_before_queueing_more():
    writer = BackgroundWriter()
    writer.submit(lambda: 1 / 0)
    writer._jobs.join()
    with pytest.raises(ZeroDivisionError):
        writer.submit(lambda: None)


def test_at_most_limit_jobs_wait_at_once():
    """Each job holds a copy of the model's variables: submit blocks while ``limit`` are
    queued or running."""
    writer = BackgroundWriter(limit=1)
    release = threading.Event()
    writer.submit(release.wait)
    second = threading.Thread(target=writer.submit, args=(lambda: None,))
    second.start()
    second.join(timeout=0.3)
    assert second.is_alive()  # waiting for the first job's place
    release.set()
    second.join(timeout=10)
    assert not second.is_alive()
    writer.wait()


def test_a_run_has_one_writer_and_settle_waits_for_it(tmp_path):
    run = RunDir.create(tmp_path, "w")
    writer = BackgroundWriter.of(run)
    assert BackgroundWriter.of(run) is writer is BackgroundWriter.attached(run)
    release = threading.Event()
    writer.submit(lambda: release.wait() and run.file("late.txt").write_text("whole"))
    thread = writer._thread
    threading.Timer(0.2, release.set).start()
    assert settle(run) == []
    assert run.file("late.txt").read_text() == "whole"
    assert BackgroundWriter.attached(run) is None  # collected
    assert not thread.is_alive()  # ended: many runs in one process leave no threads behind


def test_settle_turns_a_failed_write_into_a_note(tmp_path):
    run = RunDir.create(tmp_path, "w")
    BackgroundWriter.of(run).submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
    assert settle(run) == ["writing the run's files failed: OSError: disk full"]


def test_the_threads_work_is_timed_apart_from_trainctls_own():
    import time

    from trainctl.run import timing

    timing.reset()
    writer = BackgroundWriter()
    writer.submit(lambda: time.sleep(0.02))
    writer.wait()
    seconds = timing.timings()
    timing.reset()
    assert seconds["background"] >= 0.02
    assert seconds["own"] == 0.0  # the training did not wait for it


def test_wait_for_writes_waits_for_every_writer_of_the_process():
    from trainctl.run.writer import wait_for_writes

    release, done = threading.Event(), []
    writers = [BackgroundWriter(), BackgroundWriter()]
    writers[0].submit(lambda: release.wait() and done.append(0))
    writers[1].submit(lambda: done.append(1))
    threading.Timer(0.2, release.set).start()
    wait_for_writes()
    assert sorted(done) == [0, 1]
