"""trainctl.artifacts: unique run folders under races, safe names, clear write errors, run.json lock."""

from __future__ import annotations

import errno
import os
import random
import threading
from pathlib import Path

import pytest

from trainctl import artifacts
from trainctl.artifacts import RunDir, check_folder_name
from trainctl.errors import UsageError

STAMP = "20260101-000000"


@pytest.fixture
def fixed_stamp(monkeypatch):
    """Every run folder made in the same second, so only the random id tells them apart."""
    monkeypatch.setattr(artifacts, "_stamp", lambda: STAMP)


def ids(monkeypatch, *values: str) -> list[str]:
    """Make short_id return ``values`` in order; returns the list of ids drawn so far."""
    drawn: list[str] = []
    it = iter(values)

    def short_id() -> str:
        drawn.append(next(it))
        return drawn[-1]

    monkeypatch.setattr(artifacts, "short_id", short_id)
    return drawn


def test_short_id_is_six_random_hex_digits():
    draws = {artifacts.short_id() for _ in range(200)}
    assert all(len(d) == 6 and int(d, 16) >= 0 for d in draws)
    assert len(draws) >= 199  # 24 random bits: a repeat in 200 draws is a ~1e-3 event


def test_create_makes_the_folder_and_checkpoints(tmp_path):
    run = RunDir.create(tmp_path / "runs" / "deep", "mnist-mlp")
    assert run.path.parent == tmp_path / "runs" / "deep"
    assert run.path.name.startswith("mnist-mlp-") and (run.path / "checkpoints").is_dir()
    assert [p.name for p in run.path.iterdir()] == ["checkpoints"]  # the write probe is gone


def test_a_collision_draws_a_new_id(tmp_path, monkeypatch, fixed_stamp):
    drawn = ids(monkeypatch, "aaaaaa", "aaaaaa", "bbbbbb")
    first = RunDir.create(tmp_path, "x")
    (first.path / "mine.txt").write_text("first run's file")
    second = RunDir.create(tmp_path, "x")
    assert drawn == ["aaaaaa", "aaaaaa", "bbbbbb"]  # the clash was seen and retried
    assert first.path.name == f"x-{STAMP}-aaaaaa" and second.path.name == f"x-{STAMP}-bbbbbb"
    assert (first.path / "mine.txt").read_text() == "first run's file"  # never reused
    assert not (second.path / "mine.txt").exists()


def test_no_free_id_is_a_usage_error(tmp_path, monkeypatch, fixed_stamp):
    ids(monkeypatch, *["cccccc"] * (1 + RunDir.ATTEMPTS))
    RunDir.create(tmp_path, "x")
    with pytest.raises(UsageError, match="could not find a free run folder name"):
        RunDir.create(tmp_path, "x")
    assert len(list(tmp_path.iterdir())) == 1


def test_concurrent_creates_never_share_a_folder(tmp_path, monkeypatch, fixed_stamp):
    """16 threads, same name and second, ids from a pool of 24: clashes happen, all retried."""
    pool = [f"{i:06x}" for i in range(24)]
    monkeypatch.setattr(artifacts, "short_id", lambda: random.choice(pool))
    start = threading.Barrier(16)
    made: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            made.append(RunDir.create(tmp_path, "race").path)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(made) == len(set(made)) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in made)


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", "", ".", "..", "abc\n", "a\tb", "-x",
                                  ".hidden", "a\x00b"])
def test_names_that_leave_the_runs_dir_are_refused(tmp_path, name):
    with pytest.raises(UsageError) as err:
        RunDir.create(tmp_path / "runs", name)
    assert repr(name) in str(err.value) and "hint: set name:" in str(err.value)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["mnist-mlp", "exp_1.v2", "A", "my experiment"])
def test_plain_names_are_accepted(name):
    check_folder_name(name)


def test_runs_dir_below_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError) as err:
        RunDir.create(tmp_path / "f" / "runs", "x")
    assert f"{tmp_path / 'f'} is a file, not a folder" in str(err.value)
    assert str(tmp_path / "f" / "runs") in str(err.value)


@pytest.mark.parametrize("code,words", [(errno.EROFS, "read-only"),
                                        (errno.ENOSPC, "the disk is full"),
                                        (errno.EACCES, "permissions")])
def test_run_folder_that_cannot_be_made(tmp_path, monkeypatch, code, words):
    real = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path).parent == tmp_path:
            raise OSError(code, os.strerror(code), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(UsageError) as err:
        RunDir.create(tmp_path, "x")
    text = str(err.value)
    assert f"cannot create the run folder {tmp_path}/x-" in text and os.strerror(code) in text
    assert words in text and "--runs-dir" in text
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_written_is_removed_again(tmp_path, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)  # mkdir works, writing a file does not
    with pytest.raises(UsageError, match="No space left on device") as err:
        RunDir.create(tmp_path, "x")
    assert "cannot write in the run folder" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_names_the_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    run = RunDir.create(tmp_path, "x")
    run.write_json("run.json", {"status": "running"})

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(UsageError) as err:
        run.update_run(status="completed")
    assert str(run.file("run.json")) in str(err.value) and "No space left" in str(err.value)
    monkeypatch.undo()
    assert run.read_json("run.json") == {"status": "running"}  # the old file is intact
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoints", "run.json"]


def test_discard_removes_the_folder(tmp_path):
    run = RunDir.create(tmp_path, "x")
    run.write_text("config.yaml", "a: 1\n")
    run.discard()
    assert list(tmp_path.iterdir()) == []


def test_concurrent_records_are_all_kept(tmp_path):
    """evaluate and predict on one run at once: run.json's read-modify-write is locked."""
    run = RunDir.create(tmp_path, "x")
    run.write_json("run.json", {"status": "completed"})

    def worker(k: int) -> None:
        for i in range(15):
            run.add_record("evaluate", {"worker": k, "i": i})
            RunDir(run.path).update_run(**{f"w{k}": i})

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    info = run.read_json("run.json")
    assert len(info["records"]) == 60
    assert {(r["worker"], r["i"]) for r in info["records"]} == {
        (k, i) for k in range(4) for i in range(15)}
    assert [info[f"w{k}"] for k in range(4)] == [14] * 4
    assert not [p for p in run.path.iterdir() if ".tmp" in p.name]


def test_an_exact_name_is_the_whole_folder_name_and_is_used_once(tmp_path):
    run = RunDir.create(tmp_path, "trial-003", exact=True)
    assert run.path == tmp_path / "trial-003" and (run.path / "checkpoints").is_dir()
    with pytest.raises(UsageError, match="trial-003 exists already"):
        RunDir.create(tmp_path, "trial-003", exact=True)


def test_git_state_prefetched_on_a_thread_is_the_same_answer(tmp_path):
    import subprocess

    from trainctl.artifacts import git_state, prefetch_git_state

    assert git_state(tmp_path) is None  # not a repository
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": os.environ["PATH"]}
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    direct = git_state(repo)
    assert direct["dirty"] is False and len(direct["commit"]) == 40
    prefetch_git_state(repo)
    assert git_state(repo) == direct  # the thread's answer
    assert git_state(repo) == direct  # and afresh once it was taken
