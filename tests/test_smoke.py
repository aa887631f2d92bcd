"""``trainctl smoke``: discovery, status and exit codes, JUnit XML, child processes.

Every repository config is smoke-run once, by tests/test_configs.py; these tests use
tiny synthetic configs (a run in about a second).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from conftest import tiny_config
from trainctl.cli import cli
from trainctl.errors import ExitCode
from trainctl.run.junit import junit_tree, xml_text
from trainctl.run.smoke import FAILED, INVALID, OK, SmokeResult, find_configs
from trainctl.run.smoke_report import exit_code

BOOM = '''\
import keras


class Boom(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("boom at the end of epoch %d" % epoch)
'''


def smoke(*args: str):
    return CliRunner().invoke(cli, ["smoke", *args])


def test_folders_are_searched_and_partial_bases_skipped(tmp_path, write_config):
    write_config("a: 1\n", "b/one.yaml")
    write_config("a: 1\n", "b/_base/base.yaml")
    write_config("a: 1\n", "b/deep/_partials/p.yaml")
    write_config("a: 1\n", "b/deep/two.yml")
    write_config("a: 1\n", "b/runs/exp-20261130-101500-3f9a2c/config.yaml")  # a run's record
    write_config("{}\n", "b/runs/exp-20261130-101500-3f9a2c/run.json")
    explicit = write_config("a: 1\n", "_base/named.yaml")
    found = find_configs([tmp_path / "b", explicit])
    assert found == [tmp_path / "b/deep/two.yml", tmp_path / "b/one.yaml", explicit]


def test_missing_path_and_empty_folder_are_usage_errors(tmp_path):
    missing = smoke(str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "nope: no such file or folder" in missing.output
    (tmp_path / "empty" / "_base").mkdir(parents=True)
    (tmp_path / "empty" / "_base" / "b.yaml").write_text("a: 1\n")
    empty = smoke(str(tmp_path / "empty"))
    assert empty.exit_code == 2 and "no *.yaml config found" in empty.output
    assert "Traceback" not in missing.output + empty.output


def test_invalid_configs_give_exit_2_with_each_named(tmp_path, write_config):
    typo = write_config(tiny_config("t", seed=1, epochs=1).replace("epochs", "epoks"),
                        "typo.yaml")
    syntax = write_config("name: [unclosed\n", "syntax.yaml")
    junit = tmp_path / "out" / "smoke.xml"
    result = smoke(str(typo), str(syntax), "--junit", str(junit))
    assert result.exit_code == 2, result.output
    invalid_rows = [line for line in result.output.splitlines() if line.startswith(INVALID)]
    assert len(invalid_rows) == 2
    assert str(typo) in invalid_rows[0] and "fit.epoks" in invalid_rows[0]
    assert str(syntax) in invalid_rows[1] and "syntax.yaml:" in invalid_rows[1]
    assert "2 configs: 0 ok, 0 failed, 2 invalid" in result.output
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert [c.get("name") for c in cases] == [str(typo), str(syntax)]
    assert all(c.find("failure").get("type") == INVALID for c in cases)


def test_a_run_that_fails_gives_exit_1_and_a_child_process_config_runs(tmp_path, write_config):
    """Three configs: one set-up only a fresh process allows (runtime.threads: a child
    process), one whose plug-in callback raises (failed), one plain (ok)."""
    write_config(BOOM, "boom.py")
    threads = write_config(tiny_config("threads", seed=1, epochs=1,
                                       extra="runtime: {threads: {intra_op: 1}}\n"),
                           "a_threads.yaml")
    boom = write_config(tiny_config("boom", seed=2, epochs=1).replace(
        "fit: {epochs: 1, batch_size: 16}",
        "fit: {epochs: 1, batch_size: 16, callbacks: ['boom:Boom']}"), "b_boom.yaml")
    plain = write_config(tiny_config("plain", seed=3, epochs=1), "c_plain.yaml")
    runs, junit = tmp_path / "runs", tmp_path / "smoke.xml"
    result = smoke(str(tmp_path), "--runs-dir", str(runs), "--junit", str(junit))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    status = {path: next(line.split()[0] for line in lines if str(path) in line)
              for path in (threads, boom, plain)}
    assert status == {threads: OK, boom: FAILED, plain: OK}
    boom_row = next(line for line in lines if str(boom) in line)
    assert "training failed: RuntimeError: boom at the end of epoch 0" in boom_row
    assert f"traceback: {runs}" in result.output and "error.txt" in result.output  # kept
    runs_status = sorted(json.loads(p.read_text())["status"] for p in runs.glob("*/run.json"))
    assert runs_status == ["completed", "completed", "failed"]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    failure = cases[str(boom)].find("failure")
    # the traceback is read before a temporary runs folder is removed
    assert failure.get("type") == FAILED and "Traceback" in failure.text
    assert cases[str(threads)].find("failure") is None
    assert "run: " in cases[str(threads)].find("system-out").text


def test_smoke_reads_a_keras_data_set_file_once_and_hands_out_copies(tmp_path, monkeypatch):
    """In smoke's loop (keras_datasets_read_once) mnist.npz is parsed once while it is
    unchanged; each load gets arrays of its own and the file's hash; a rewritten file is
    read again, and outside the loop every load reads it."""
    import os

    import numpy as np

    from trainctl.data import builtin
    from trainctl.data.sources import keras_datasets_read_once, load_source
    from trainctl.data.types import Signature
    from trainctl.errors import Location

    path = tmp_path / "mnist.npz"

    def write(label: int) -> None:
        np.savez(path, x_train=np.zeros((4, 28, 28), np.uint8), y_train=np.full(4, label),
                 x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.zeros(2, np.uint8))

    write(1)
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(tmp_path))
    reads = []
    real = builtin.load_dataset
    monkeypatch.setattr(builtin, "load_dataset",
                        lambda ds, found, *args: reads.append(found) or real(ds, found, *args))

    def load():
        ctx = dict(path=None, path_key="data.path", config_dir=tmp_path,
                   signature=Signature(inputs={}), seed=None)
        return load_source("mnist", ctx, key="data.source",
                           locate=lambda key: Location("x.yaml", 1, 1))

    with keras_datasets_read_once():
        first, second = load(), load()
        assert len(reads) == 1 and first.files == second.files and \
            list(first.files) == [str(path.resolve())]
        second.train.y[:] = 7  # a run that changes its arrays changes no other run's
        assert first.train.y.tolist() == load().train.y.tolist() == [1, 1, 1, 1]
        write(2)
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        assert load().train.y.tolist() == [2, 2, 2, 2] and len(reads) == 2
    load()
    assert len(reads) == 3


def test_exit_code_prefers_invalid_over_failed():
    def result(status: str) -> SmokeResult:
        return SmokeResult(Path(f"{status}.yaml"), status, 1.0, message=f"{status} config")

    assert exit_code([result(OK), result(OK)]) == ExitCode.OK
    assert exit_code([result(OK), result(FAILED)]) == ExitCode.FAILED
    assert exit_code([result(FAILED), result(INVALID), result(OK)]) == ExitCode.USAGE


def test_junit_holds_output_with_control_characters_as_valid_xml():
    results = [SmokeResult(Path("a.yaml"), OK, 1.25, output="epoch 1/1 \x1b[1m\x08 <&>\n"),
               SmokeResult(Path("b.yaml"), FAILED, 2.0, message="RunFailed: x < y\nmore",
                           detail="Traceback ...\x00")]
    text = ET.tostring(junit_tree(results, seconds=3.25).getroot(), encoding="unicode")
    root = ET.fromstring(text)  # parses back: every character is valid XML
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("time")) == ("2", "1", "3.250")
    out = root.find(".//testcase[@name='a.yaml']/system-out").text
    assert out == "epoch 1/1 ?[1m? <&>\n"
    failure = root.find(".//testcase[@name='b.yaml']/failure")
    assert failure.get("message") == "RunFailed: x < y" and failure.text.endswith("...?")
    assert xml_text("tab\tok\r\n") == "tab\tok\r\n"


def test_reset_undoes_precision_and_determinism():
    import keras
    from tensorflow.python.framework import config as tf_config

    from trainctl.run.runtime import reset_process_state, set_precision, set_seed

    set_precision("mixed_bfloat16")
    set_seed(3, deterministic=True)
    assert tf_config.is_op_determinism_enabled()
    reset_process_state()
    assert keras.mixed_precision.global_policy().name == "float32"
    assert not tf_config.is_op_determinism_enabled()


def test_smoke_keeps_tensorflows_start_up_messages_out_of_ci_logs(tmp_path, write_config):
    """Like fit, smoke imports TensorFlow quietly (its C++ lines go to the real stderr, so
    only a child process shows them); --verbose would show them."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    path = write_config(tiny_config("quiet", seed=1, epochs=1))
    done = subprocess.run([sys.executable, "-m", "trainctl", "smoke", str(path), "--runs-dir",
                           str(tmp_path / "runs")], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 config: 1 ok" in done.stdout
    for noise in ("absl::InitializeLog", "cuda", "cpu_feature_guard", "oneDNN"):
        assert noise not in done.stderr, done.stderr


def test_a_plugin_named_in_a_component_imports_tensorflow_quietly(tmp_path, write_config):
    """`loss: my_losses:fn` in a module that imports Keras: its import used to start
    TensorFlow with every C++ start-up line, under validate and fit alike."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    (tmp_path / "my_losses.py").write_text("import keras\n\n\ndef fn(y_true, y_pred):\n"
                                           "    return keras.losses.mse(y_true, y_pred)\n")
    path = write_config(tiny_config("quiet", seed=1, epochs=1).replace(
        "loss: sparse_categorical_crossentropy", "loss: my_losses:fn"))
    assert "my_losses:fn" in path.read_text()
    done = subprocess.run([sys.executable, "-m", "trainctl", "validate", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "ok: " in done.stdout, done.stdout + done.stderr
    for noise in ("absl::InitializeLog", "cuda", "cpu_feature_guard"):
        assert noise not in done.stderr, done.stderr


# -- same-named plug-in modules, signals, warnings -------------------------------------
SAME = '''\
import keras

import trainctl


@trainctl.register("layer")
class Same(keras.layers.Layer):
    def call(self, x):
        return {body}
'''


def plugin_config(name: str, layer: str) -> str:
    """A tiny config (16 features) whose first layer is the plug-in ``layer`` of
    ``imports: [plugins2]``."""
    return (tiny_config(name, seed=1, epochs=1, extra="imports: [plugins2]\n")
            .replace("shape: [4]", "shape: [16]")
            .replace("    - {type: Dense", f"    - {{type: {layer}}}\n    - {{type: Dense"))


def test_module_clash_compares_the_files_a_configs_search_path_gives(tmp_path, monkeypatch):
    """Found without importing: a module (or a package above it) imported from another
    folder's file clashes; the same file, or one not imported yet, does not."""
    import sys

    from trainctl.plugins import module_clash, module_origins, named_modules

    for folder in ("a", "b"):
        (tmp_path / folder / "pkgx").mkdir(parents=True)
        (tmp_path / folder / "clash_mod.py").write_text("X = 1\n")
        (tmp_path / folder / "pkgx" / "__init__.py").write_text("")
        (tmp_path / folder / "pkgx" / "plug.py").write_text("Y = 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    for name in ("clash_mod", "pkgx", "pkgx.plug"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert module_clash(["clash_mod", "pkgx.plug"], tmp_path / "b") is None  # none imported
    import clash_mod  # noqa: F401  a's, as the first config would
    import pkgx.plug  # noqa: F401
    try:
        reason = module_clash(["clash_mod"], tmp_path / "b")
        assert reason == ("plug-in module 'clash_mod' is b/clash_mod.py here, but "
                          "a/clash_mod.py is already imported")
        assert "'pkgx' is b/pkgx/__init__.py" in module_clash(["pkgx.plug"], tmp_path / "b")
        assert module_clash(["clash_mod", "pkgx.plug"], tmp_path / "a") is None
        origins = module_origins("pkgx.plug", [str(tmp_path / "b")])
        assert origins["pkgx.plug"] == str(tmp_path / "b" / "pkgx" / "plug.py")
    finally:
        for name in ("clash_mod", "pkgx", "pkgx.plug"):
            sys.modules.pop(name, None)
    data = {"imports": ["pkgx.plug"], "compile": {"loss": "my_losses:fn"},
            "fit": {"callbacks": [{"type": "tests.plugins.pause:PauseAt"}, "keras.x:Y"]},
            "name": "a:b c"}
    assert named_modules(data) == ["pkgx.plug", "my_losses", "tests.plugins.pause"]


def test_same_named_plugin_modules_of_two_folders_each_run_their_own(tmp_path, write_config):
    """mod2/a/plugins2.py and mod2/b/plugins2.py both register `Same`; b's keeps 10 of the
    16 features. b used to run a's code in smoke's one process (and pass)."""
    write_config(SAME.format(body="x"), "mod2/a/plugins2.py")
    write_config(SAME.format(body="x[:, :10]"), "mod2/b/plugins2.py")
    a = write_config(plugin_config("a", "Same"), "mod2/a/a.yaml")
    b = write_config(plugin_config("b", "Same"), "mod2/b/b.yaml")
    runs = tmp_path / "runs"
    result = smoke(str(tmp_path / "mod2"), "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    row_b = next(line for line in result.output.splitlines() if str(b) in line)
    assert row_b.startswith(OK) and "in a child process: plug-in module 'plugins2'" in row_b
    shapes = {}
    for summary in runs.glob("*/summary.txt"):
        line = next(line for line in summary.read_text().splitlines() if "(Same)" in line)
        shapes[summary.parent.name.split("-")[0]] = line.split("│")[2].strip()
    assert shapes == {"a": "(None, 16)", "b": "(None, 10)"}, (shapes, str(a))


def test_a_signal_writes_the_junit_with_the_running_config_stopped(tmp_path, write_config):
    """SIGTERM in the second of three configs (as a CI cancel): exit 143, every config in
    the JUnit (ok, error, skipped), and no hint naming the removed temporary folder."""
    write_config(BOOM, "boom_signal.py")  # not `boom`: another test's is imported (a child)
    boom = write_config(tiny_config("boom", seed=2, epochs=1).replace(
        "fit: {epochs: 1, batch_size: 16}",
        "fit: {epochs: 1, batch_size: 16, callbacks: ['boom_signal:Boom']}"), "a_boom.yaml")
    marker = tmp_path / "signal.sent"
    stopped = write_config(tiny_config("stopped", seed=1, epochs=1).replace(
        "fit: {epochs: 1, batch_size: 16}",
        "fit: {epochs: 1, batch_size: 16, callbacks: [{type: 'tests.plugins.pause:SignalAt', "
        f"epoch: 0, batch: 0, marker: '{marker}', signal: SIGTERM}}]}}"), "b_signal.yaml")
    later = write_config(tiny_config("later", seed=3, epochs=1), "c_later.yaml")
    junit = tmp_path / "term.xml"
    result = smoke(str(tmp_path), "--junit", str(junit))
    assert result.exit_code == int(ExitCode.TERMINATED), result.output
    assert marker.exists()
    assert "trainctl resume" not in result.output and "trainctl-smoke-" not in result.output
    assert "traceback: in the --junit file" in result.output
    assert ", 1 stopped, 1 skipped in" in result.output
    import gc

    assert gc.get_freeze_count() == 0  # what smoke froze between configs is let go again
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert list(cases) == [str(boom), str(stopped), str(later)]
    assert "Traceback" in cases[str(boom)].find("failure").text
    error = cases[str(stopped)].find("error")
    assert error.get("message") == "terminated by SIGTERM; the run stopped cleanly"
    assert cases[str(later)].find("skipped").get("message") == \
        "not run: the smoke run was terminated by SIGTERM"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("1", "1", "1")
    # with --runs-dir the run folder stays: the row says how to continue it
    again = write_config(stopped.read_text().replace(str(marker), str(marker) + "2"),
                         "kept/again.yaml")
    kept = smoke(str(again), "--runs-dir", str(tmp_path / "runs"))
    assert kept.exit_code == int(ExitCode.TERMINATED), kept.output
    assert f"continue it with `trainctl resume {tmp_path / 'runs'}" in kept.output


NOISY = '''\
import sys
import warnings

import keras

print("warning: noisy imported", file=sys.stderr)  # once: when the first config loads


class Noisy(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        print("warning: noisy says hello", file=sys.stderr)
        warnings.warn("a user warning from noisy", UserWarning)
'''


def test_warnings_go_to_the_junit_and_under_the_table(tmp_path, write_config):
    """A run's `warning:` lines and Python warnings used to be printed between rows (and
    not reach the JUnit); each config shows them again, not only the first."""
    write_config(NOISY, "noisy.py")
    noisy = [write_config(tiny_config(f"noisy{i}", seed=i, epochs=1).replace(
        "fit: {epochs: 1, batch_size: 16}",
        "fit: {epochs: 1, batch_size: 16, callbacks: ['noisy:Noisy']}"), f"n{i}.yaml")
        for i in (1, 2)]
    junit = tmp_path / "w.xml"
    result = smoke(*map(str, noisy), "--junit", str(junit))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("status") and lines[3] == "warnings:", result.output
    assert lines[1].startswith(OK) and lines[1].endswith("3 warnings"), result.output
    assert lines[2].startswith(OK) and lines[2].endswith("2 warnings"), result.output
    assert f"  {noisy[1]}: warning: noisy says hello" in lines
    assert f"  {noisy[0]}: warning: noisy imported" in lines
    assert sum("UserWarning: a user warning from noisy" in line for line in lines) == 2
    errs = [case.find("system-err").text for case in ET.parse(junit).getroot().iter("testcase")]
    assert "warning: noisy imported" in errs[0]  # printed while its config was loaded
    for err in errs:
        assert "warning: noisy says hello" in err and "UserWarning: a user warning" in err
