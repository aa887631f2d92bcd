"""Property-based fuzzing of ``trainctl validate``: bad input never crashes with a traceback.

Hundreds of mutated versions of the real configs (``configs/`` and
``configs/examples/``) go through the command line in-process (click's
CliRunner): mutations of the parsed data (deleted, renamed, retyped and unknown
keys, near and random component names, empty and deeply nested values), of the
YAML text (edited characters, truncation, tabs, tags, anchors and aliases up to
billion-laughs size, duplicate keys, bytes that are not UTF-8), and random
``--set`` options. Every run must exit 0 (``ok: FILE``) or 2 with an
``error:`` message that starts with where the problem is (``file:line:col`` for
anything inside a file, the ``--set`` option for an override); never a
traceback, never exit 1, never a hang.

A smaller test does the same for ``validate --build`` (TensorFlow: build the
model, one synthetic train step) on mutated ``mnist.yaml`` and ``multi_io.yaml``.

The examples are derandomized, so CI sees the same inputs on every run.
"""

from __future__ import annotations

import copy
import re
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import event, given, settings
from hypothesis import strategies as st

from trainctl.cli import cli
from trainctl.config import load_config
from trainctl.config.source import format_key
from trainctl.errors import TrainctlError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
# Every config that is complete on its own (configs/_base/ holds bases only).
SOURCES = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.yaml")
                 if "_base" not in p.relative_to(CONFIGS).parts)
ORIGINAL_TEXT = {rel: (CONFIGS / rel).read_text(encoding="utf-8") for rel in SOURCES}
ORIGINAL_DATA = {rel: yaml.safe_load(text) for rel, text in ORIGINAL_TEXT.items()}
BUILD_SOURCES = ["mnist.yaml", "multi_io.yaml"]

# Extra files next to the copied configs, for `extends:` to point at.
EXTRA_BASES = {
    "_base/empty.yaml": "",
    "_base/list.yaml": "- 1\n- 2\n",
    "_base/scalar.yaml": "just a string\n",
    "_base/cycle_a.yaml": "extends: cycle_b.yaml\nseed: 1\n",
    "_base/cycle_b.yaml": "extends: cycle_a.yaml\n",
    "_base/broken.yaml": "data: {source: [mnist\n",
}
EXTENDS_TARGETS = ["_base/mnist_mlp.yaml", "../_base/mnist_mlp.yaml", "_base/empty.yaml",
                   "../_base/empty.yaml", "_base/list.yaml", "../_base/scalar.yaml",
                   "_base/cycle_a.yaml", "../_base/broken.yaml", "_fuzz.yaml", "missing.yaml",
                   "_base", "..", "", "\x00", "../../../../../../../nowhere.yaml"]

# Example counts are sized to the suite's time budget (~50 ms an example, ~0.5 s one
# with --build): about 8 data mutations, 5 text edits and 5 --set cases per config, and
# 16 --build cases of which ~10 pass validate and are built.
FUZZ = settings(deadline=None, derandomize=True, database=None)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of configs/ (relative `extends:` keep working) plus a few broken bases.

    validate puts each config's folder on sys.path (for plug-ins): put it back after.
    """
    root = tmp_path_factory.mktemp("fuzz") / "configs"
    shutil.copytree(CONFIGS, root)
    for rel, text in EXTRA_BASES.items():
        (root / rel).write_text(text, encoding="utf-8")
    saved = list(sys.path)
    yield root
    sys.path[:] = saved


# -- what a run must look like ---------------------------------------------------------
_LOC = re.compile(r"^(?P<file>/[^\n]*?\.yaml)(?::(?P<line>\d+):(?P<col>\d+))?: ")
# Problems with the file as a whole: no line to point at.
_WHOLE_FILE = ("config file not found", "the config file is empty",
               "cannot read config file", "expected a YAML file")


_PY_WARNING = re.compile(r"^\S+:\d+: \w*Warning: ")


def _messages(out: str) -> list[str]:
    """The output without notes: a plug-in's warning (a tf.keras 2 metric adapted to Keras 3),
    the strategy --build set up, and Python warnings from Keras (the source line after one
    too) when pytest is not recording them."""
    lines, after_warning = [], False
    for line in out.splitlines():
        if after_warning and line.startswith("  "):
            after_warning = False
            continue
        after_warning = bool(_PY_WARNING.match(line))
        if not after_warning and not line.startswith(("warning: ", "strategy: ")):
            lines.append(line)
    return lines


def check(result, path: Path) -> None:
    """Exit 0 with ``ok: PATH``, or exit 2 with located ``error:`` messages; nothing else."""
    out = result.output
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), (
        f"unhandled {type(exc).__name__}: {exc}\n{out}")
    assert result.exit_code in (0, 2), out
    assert "Traceback" not in out, out
    lines = _messages(out)
    event(f"exit {result.exit_code}")  # --hypothesis-show-statistics: how many got through
    if result.exit_code == 0:
        assert lines == [f"ok: {path}"], out
        return
    assert lines and lines[0].startswith("error: "), out
    # Each error is `LOCATION: [key: ]message`, hints on their own indented lines.
    lines[0] = lines[0][len("error: "):]
    for line in lines:
        if line.startswith("  hint: "):
            continue
        if line.startswith("--set "):
            continue  # an override: the option is the location
        m = _LOC.match(line)
        assert m, f"error without file:line:col: {line!r}\n{out}"
        if m["line"] is None:
            assert any(words in line for words in _WHOLE_FILE), (
                f"error without line:col: {line!r}\n{out}")


def invoke(args: list[str], timeout: int = 60):
    """Run the command line in-process; a hang fails the example instead of the whole run."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not \
            threading.main_thread():
        return CliRunner().invoke(cli, args, catch_exceptions=True)

    def hang(signum, frame):
        raise TimeoutError(f"no answer in {timeout} s: {args}")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(timeout)
    try:
        return CliRunner().invoke(cli, args, catch_exceptions=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# -- data-level mutations ----------------------------------------------------------------
_NAMES = ["Dense", "Dens", "dense", "DENSE", "Dropout", "Conv2D", "Concatenate", "Flatten",
          "rmsprop", "RMSprop", "adam", "Adamw", "relu", "softmax",
          "sparse_categorical_crossentropy",
          "mse", "accuracy", "EarlyStopping", "ExponentialDecay", "GlorotUniform", "synthetic",
          "mnist", "npz", "LogMetric", "Model", "Layer", "Sequential", "InputLayer", "Input",
          "collections:OrderedDict", "math:pi", "no_such_module:Thing", "examples.plugins:x",
          "examples.plugins.losses:nothing", "trainctl.layers:LogMetric", ":", "a:", ":b",
          "..:x", "é", "日本語", "\u202e", "🙂", "", " ", "None", "null"]
_STRINGS = ["", "NaN", ".nan", "-.inf", "1e400", "null", "~", "yes", "no", "0x1F", "0o17",
            "2001-12-14", "'quoted'", "\"", "{}", "[1, 2", "%s", "{0}", "\\", "\t", "\n",
            "a" * 300, "val_loss", "loss", "float16", "int8", "bfloat16", "complex128", "string",
            "/dev/null", "../escape", "*.keras"] + _NAMES


def _text(max_size: int = 12) -> st.SearchStrategy[str]:
    # ':' would make a random string a `module:Name` to import; fixed names cover that.
    return st.text(max_size=max_size).map(lambda s: s.replace(":", "_"))


# Strategies are built once, here: building them per example costs more than drawing.
TEXT, SHORT_TEXT = _text(), _text(3)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70),
    st.integers(min_value=-2**80, max_value=2**80),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 2**64 + 1, 10**30, -10**30, 10**400]),
    st.floats(), st.sampled_from([0.5, 1e-300, 1e300, -0.0, float("nan"), float("inf")]),
    TEXT, st.sampled_from(_STRINGS),
)
KEYS = st.one_of(_text(10), st.sampled_from(
    ["type", "name", "inputs", "units", "shape", "layers", "source", "loss", "extends",
     "imports", "<<", "monitor", "args", "dtype", "", "0", "[0]", "a.b", "a[", "é"]),
    st.integers(-2, 2), st.booleans(), st.none(), st.floats(allow_nan=False))
JUNK = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=10)
EXTENDS_VALUES = st.one_of(st.sampled_from(EXTENDS_TARGETS),
                           st.lists(st.sampled_from(EXTENDS_TARGETS), max_size=3))


def pick(draw, seq: list) -> Any:
    """One item of ``seq`` (``st.integers`` strategies are cached; ``sampled_from`` of a new
    list would be built and validated again on every call)."""
    return seq[draw(st.integers(0, len(seq) - 1))]


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _get(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    _get(data, path[:-1])[path[-1]] = value
    return data


def typo(draw, word: str) -> str:
    """A near miss: a character deleted, inserted, swapped or changed, or the case changed."""
    if not word:
        return draw(SHORT_TEXT)
    op = pick(draw, ["delete", "insert", "swap", "replace", "case", "suffix"])
    i = draw(st.integers(0, len(word) - 1))
    if op == "delete":
        return word[:i] + word[i + 1:]
    if op == "insert":
        return word[:i] + pick(draw, list("_aes.-0 Z")) + word[i:]
    if op == "swap" and len(word) > 1:
        i = min(i, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "replace":
        return word[:i] + pick(draw, list("xqz_1E")) + word[i + 1:]
    if op == "case":
        return word.swapcase()
    return word + pick(draw, ["s", "_", "2", "es"])


def _nest(depth: int, leaf: Any, as_dict: bool) -> Any:
    for _ in range(depth):
        leaf = {"a": leaf} if as_dict else [leaf]
    return leaf


def mutate(draw, data: Any) -> Any:
    """Apply one data-level mutation to ``data`` (in place where it can); return the result."""
    paths = _paths(data)
    inner = [p for p in paths if p]
    op = pick(draw, ["delete", "rename", "replace", "replace", "insert", "duplicate", "name",
                     "empty", "deep", "extends"])
    if op == "delete" and inner:
        path = pick(draw, inner)
        del _get(data, path[:-1])[path[-1]]
        return data
    if op == "rename":
        keyed = [p for p in inner if isinstance(_get(data, p[:-1]), dict)]
        if keyed:
            path = pick(draw, keyed)
            parent = _get(data, path[:-1])
            new = typo(draw, str(path[-1])) if draw(st.booleans()) else draw(KEYS)
            parent[new] = parent.pop(path[-1])
            return data
    if op == "insert":
        dicts = [p for p in paths if isinstance(_get(data, p), dict)]
        if dicts:
            _get(data, pick(draw, dicts))[draw(KEYS)] = draw(JUNK)
            return data
    if op == "duplicate":
        lists = [p for p in paths if isinstance(_get(data, p), list) and _get(data, p)]
        if lists:
            items = _get(data, pick(draw, lists))
            i = draw(st.integers(0, len(items) - 1))
            items.insert(draw(st.integers(0, len(items))), copy.deepcopy(items[i]))
            return data
    if op == "name":  # a component name (type:, a string value) near or far from a real one
        named = [p for p in inner if isinstance(_get(data, p), str)]
        if named:
            path = pick(draw, named)
            how = draw(st.integers(0, 2))
            new = typo(draw, _get(data, path)) if how == 0 else \
                pick(draw, _NAMES) if how == 1 else draw(TEXT)
            return _set(data, path, new)
    if op == "empty":
        containers = [p for p in paths if isinstance(_get(data, p), (list, dict))]
        if containers:
            path = pick(draw, containers)
            return _set(data, path, [] if isinstance(_get(data, path), list) else {})
    if op == "deep":
        path = pick(draw, paths if draw(st.integers(0, 9)) == 0 else inner or paths)
        junk = _nest(draw(st.integers(1, 80)), draw(SCALARS), draw(st.booleans()))
        return _set(data, path, junk)
    if op == "extends" and isinstance(data, dict):
        data["extends"] = draw(EXTENDS_VALUES)
        return data
    # "replace", and the fallback when an operation found nothing to work on
    target = paths if draw(st.integers(0, 19)) == 0 else inner or paths
    return _set(data, pick(draw, target), draw(JUNK))


@st.composite
def mutated_data(draw) -> tuple[str, Any]:
    """A real config, parsed, with one to four data-level mutations."""
    rel = pick(draw, SOURCES)
    data = copy.deepcopy(ORIGINAL_DATA[rel])
    for _ in range(draw(st.integers(1, 4))):
        data = mutate(draw, data)
    return rel, data


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: 3x faster


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=10**6)


def _write(tree: Path, rel: str, content: str | bytes) -> Path:
    path = tree / Path(rel).parent / "_fuzz.yaml"
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


@settings(FUZZ, max_examples=300)
@given(case=mutated_data())
def test_mutated_configs_never_crash(tree, case):
    rel, data = case
    path = _write(tree, rel, _dump(data))
    check(invoke(["validate", str(path)]), path)


# -- text-level mutations ----------------------------------------------------------------
_LAUGHS = "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
    for i in range(10))
# aliases of aliases: 400 levels deep once expanded, in a 400-line text
_CHAIN = "c0: &c0 [1]\n" + "".join(f"c{i}: &c{i} [*c{i - 1}]\n" for i in range(1, 400))
_SNIPPETS = [
    "seed: !!python/object/apply:os.system ['echo pwned']\n",
    "name: !!python/name:os.system\n",
    "name: !!python/object/new:str ['x']\n",
    "seed: !!int abc\n", "seed: !!float abc\n", "seed: !!bool maybe\n",
    "seed: !!timestamp yesterday\n", "name: !!binary 'not base64!'\n", "name: !!binary aGk=\n",
    "seed: !!null x\n", "name: !!str 3\n", "seed: !custom 3\n", "seed: !<tag:x.org,1:y> 3\n",
    "data: !!set {a, b}\n", "data: !!omap [a: 1]\n", "data: !!pairs [a: 1]\n",
    "seed: !!merge 3\n", "seed: !!seq 3\n", "seed: !!map 3\n", "seed: !!value 3\n",
    "? [a, b]\n: 3\n", "? {a: 1}\n: 3\n", "[1, 2]: 3\n",
    "base: &base {epochs: 1}\nfit: {<<: *base}\n", "fit: {<<: 3}\n", "fit: {<<: [3]}\n",
    "fit: {<<: *nowhere}\n", "seed: *nowhere\n", "x: &a [*a]\n", "x: &a {b: *a}\n",
    "x: &a\n  - *a\n", _LAUGHS, _LAUGHS + "name: *l9\n", _CHAIN, _CHAIN + "seed: *c399\n",
    "%YAML 1.1\n---\n", "%YAML 9.9\n---\n", "%TAG ! tag:x.org,2000:\n---\n", "---\n",
    "...\n", "--- 3\n--- 4\n", "seed: 1\nseed: 2\n", "data: {a: 1, a: 2}\n",
    "seed: 0x10\n", "seed: 0o10\n", "seed: 1_000\n", "seed: 190:20:30\n", "seed: 1e3\n",
    "seed: .inf\n", "seed: " + "9" * 5000 + "\n", "name: " + "x" * 5000 + "\n",
    "name: 2001-12-14t21:59:43.10-05:00\n", "name: |\n  multi\n  line\n",
    "name: >-\n  folded\n", "name: 'it''s'\n", "name: \"\\x41\\u00e9\\U0001F600\"\n",
    "name: \"\\q\"\n", "\ufeffseed: 1\n", "seed: 1 # comment\n", "\t\n", "seed:\t1\n",
    "- a\n- b\n", "3\n", "null\n", "", "\n\n\n",
]
_CHARS = list(":-[]{}'\"\t\n #&*!|>%@`,?") + ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028",
                                               "\ufeff", "\ud7ff", "é", "🙂", "\r", "\\"]


@st.composite
def mutated_text(draw) -> tuple[str, bytes]:
    """A real config's text with one to three edits, written as UTF-8 or in another encoding."""
    rel = pick(draw, SOURCES)
    text = ORIGINAL_TEXT[rel]
    for _ in range(draw(st.integers(1, 3))):
        op = pick(draw, ["delete", "insert", "swap", "truncate", "tab", "snippet", "snippet",
                         "line", "deep", "alias"])
        n = len(text)
        i = draw(st.integers(0, max(n - 1, 0)))
        lines = text.splitlines(keepends=True)
        j = draw(st.integers(0, len(lines)))
        if op == "delete" and n:
            text = text[:i] + text[i + draw(st.integers(1, 5)):]
        elif op == "insert":
            text = text[:i] + (pick(draw, _CHARS) if draw(st.booleans())
                               else draw(SHORT_TEXT)) + text[i:]
        elif op == "swap" and n > 1:
            i = min(i, n - 2)
            text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
        elif op == "truncate":
            text = text[:i]
        elif op == "tab" and lines:
            k = min(j, len(lines) - 1)
            lines[k] = "\t" + lines[k].lstrip(" ")
            text = "".join(lines)
        elif op == "snippet":
            snippet = pick(draw, _SNIPPETS)
            if draw(st.booleans()) and j < len(lines):  # indented like the line it precedes
                indent = lines[j][: len(lines[j]) - len(lines[j].lstrip(" "))]
                snippet = "".join(indent + s for s in snippet.splitlines(keepends=True))
            text = "".join(lines[:j]) + snippet + "".join(lines[j:])
        elif op == "line" and lines:  # a line twice: a duplicate key (or list item)
            k = min(j, len(lines) - 1)
            text = "".join(lines[:k + 1]) + lines[k] + "".join(lines[k + 1:])
        elif op == "deep":
            depth = pick(draw, [10, 63, 64, 65, 100, 1000, 20000])
            opener = pick(draw, ["[", "{a: ", "- ", "[{a: "])
            text = text[:i] + opener * depth + text[i:]
        elif op == "alias":
            text = f"anchor: &anchor {pick(draw, ['1', 'relu', '[1, 2]', '{a: 1}'])}\n" \
                + text.replace(pick(draw, ["relu", "64", "mnist", "2"]), "*anchor", 1)
    raw = text.encode("utf-8", "surrogatepass")
    encoding = pick(draw, ["utf-8"] * 16 + ["latin-1", "utf-16", "bytes", "bom"])
    if encoding == "latin-1":
        raw = text.encode("latin-1", "replace") + "é".encode("latin-1")
    elif encoding == "utf-16":
        raw = text.encode("utf-16")
    elif encoding == "bytes":
        k = draw(st.integers(0, len(raw)))
        raw = raw[:k] + draw(st.binary(min_size=1, max_size=4)) + raw[k:]
    elif encoding == "bom":
        raw = b"\xef\xbb\xbf" + raw
    return rel, raw


@settings(FUZZ, max_examples=200)
@given(case=mutated_text())
def test_mutated_yaml_text_never_crashes(tree, case):
    rel, raw = case
    path = _write(tree, rel, raw)
    check(invoke(["validate", str(path)]), path)


# -- --set -----------------------------------------------------------------------------
_BAD_VALUES = ["[1, 2", "{a: ", ": :", "!!python/object/apply:os.system [ls]", "*undefined",
               "&a [*a]", "\t", "\x00", "'unterminated", "a: b: c", "- a\n- b", "{a: 1, a: 2}",
               "!!int x", "!!bool maybe", "!!timestamp x", "[" * 5000, "%YAML 1.1", "--- 1\n--- 2",
               "", " ", "=", "==", "null", "~", "1e400", ".nan"]
_BAD_KEYS = ["", "a..b", ".a", "a.", "[0]", "a[x]", "a[", "a]", "a[0", "a[-0]",
             "model.layers[99].units", "model.layers[-99]", "model.layers[0][0]",
             "model.layers.units", "fit.epochs.x", "fit[0]", "seed.x.y", "name[0]",
             "compile.metrics[5]", "data.features[1].rescale", "model.inputs.digits.shape[0]",
             "model.layers[99999999999999999999].x", "é.ü", " fit.epochs ", "fit . epochs",
             "model layers", "extends", "imports[0]"]
SET_TEXT = _text(20)
# a value as YAML text, as a user would type it
YAML_VALUES = JUNK.map(lambda v: yaml.dump(v, Dumper=_DUMPER, default_flow_style=True,
                                           width=10**6).strip())


def _flow(value: Any) -> str:
    text = yaml.dump(value, Dumper=_DUMPER, default_flow_style=True, width=10**6)
    return text.strip().removesuffix("\n...")


# every key of each config, with its value as --set would write it
REAL_SETS = {rel: [(format_key(p), _flow(_get(data, p))) for p in _paths(data) if p]
             for rel, data in ORIGINAL_DATA.items()}
_PLAUSIBLE = ["1", "2", "0", "-1", "64", "0.5", "1e-3", "relu", "adam", "mse", "Dense",
              "[1, 2]", "[784]", "{type: Adam, learning_rate: 0.01}", "{type: Dense, units: 4}",
              "null", "true", "''", "{}", "[]", "mnist", "val_loss"]


def set_option(draw, rel: str) -> str:
    """One ``--set KEY=VALUE``: mostly a real key with a plausible value (so that overrides
    get through to the checks after them), else a near, broken or random key with a junk
    or bad-YAML value."""
    how = draw(st.integers(0, 5))
    if how <= 2:
        key, value = pick(draw, REAL_SETS[rel])
        if how > 0:
            value = pick(draw, _PLAUSIBLE)
        return f"{key}={value}"
    key = typo(draw, pick(draw, REAL_SETS[rel])[0]) if how == 3 else \
        pick(draw, _BAD_KEYS) if how == 4 else draw(SET_TEXT)
    if draw(st.integers(0, 3)) == 0:
        key += pick(draw, ["[0]", "[99]", "[-1]", ".x", "..", "[", "["])
    how = draw(st.integers(0, 2))
    value = pick(draw, _BAD_VALUES) if how == 0 else \
        draw(YAML_VALUES) if how == 1 else draw(SET_TEXT)
    sep = pick(draw, ["="] * 8 + ["", "==", " = "])
    return f"{key}{sep}{value}"


@st.composite
def set_case(draw) -> tuple[str, list[str]]:
    """A real config and one to three ``--set`` options for it."""
    rel = pick(draw, SOURCES)
    return rel, [set_option(draw, rel) for _ in range(draw(st.integers(1, 3)))]


@settings(FUZZ, max_examples=200)
@given(case=set_case())
def test_set_overrides_never_crash(tree, case):
    rel, options = case
    path = tree / rel
    args = ["validate", str(path)]
    for option in options:
        args += ["--set", option]
    check(invoke(args), path)


# -- validate --build ---------------------------------------------------------------------
# Mostly plausible changes (real names, small sizes), so that most examples get past
# validate to the build and the train step; small numbers only: `units: 10**12` is a
# real out-of-memory, not what this test looks for.
BUILD_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 9),
                          st.sampled_from([0.0, 0.5, -1.0, 1e-9, float("nan"), "", "x", "relu",
                                           "same", "int32", [2, 2], [-1], {}]))
_LAYERS = [
    {"type": "Flatten"}, {"type": "Dropout", "rate": 0.5},
    {"type": "Reshape", "target_shape": [2, -1]},
    {"type": "Reshape", "target_shape": [3, 3]}, {"type": "BatchNormalization"},
    {"type": "LayerNormalization"}, {"type": "Conv1D", "filters": 2, "kernel_size": 3},
    {"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": "same"},
    {"type": "MaxPooling2D"}, {"type": "GlobalAveragePooling1D"}, {"type": "LSTM", "units": 2},
    {"type": "GRU", "units": 2, "return_sequences": True},
    {"type": "Embedding", "input_dim": 5, "output_dim": 2},
    {"type": "Concatenate"}, {"type": "Add"}, {"type": "Multiply"}, {"type": "Dot", "axes": 1},
    {"type": "Softmax"}, {"type": "RepeatVector", "n": 2}, {"type": "Permute", "dims": [2, 1]},
    {"type": "Activation", "activation": "tanh"}, {"type": "UnitNormalization"},
    {"type": "Identity"}, {"type": "GaussianNoise", "stddev": 0.1}, {"type": "Masking"},
    {"type": "Rescaling", "scale": 0.5}, {"type": "ZeroPadding1D"}, {"type": "UpSampling1D"},
    {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 2}},
    {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2}},
    {"type": "Dense", "units": 3, "activation": "softmax", "dtype": "float16"},
    {"type": "Dense", "units": 1, "kernel_initializer": {"type": "Constant", "value": 0.0}},
    {"type": "Dense", "units": 2, "kernel_regularizer": {"type": "L2", "l2": 0.1}},
    {"type": "LogMetric", "fn": "std", "name": "logged"},
    {"type": "CategoryEncoding", "num_tokens": 3},
    {"type": "Discretization", "num_bins": 3}, {"type": "Normalization"},
    {"type": "MultiHeadAttention", "num_heads": 1, "key_dim": 2},
]
_LOSSES = ["mse", "mae", "binary_crossentropy", "categorical_crossentropy",
           "sparse_categorical_crossentropy",
           "hinge", "kld", "poisson", "cosine_similarity", "huber", "log_cosh", "ctc", "dice",
           "categorical_hinge", "msle", "tversky", "circle",
           {"type": "CategoricalFocalCrossentropy"}, {"type": "Huber", "delta": 2.0},
           {"type": "SparseCategoricalCrossentropy", "from_logits": True}, None]
_METRICS = ["accuracy", "categorical_accuracy", "binary_accuracy", "sparse_categorical_accuracy",
            "mae", "AUC", "Precision", "R2Score", "F1Score", "top_k_categorical_accuracy",
            {"type": "MeanIoU", "num_classes": 3},
            {"type": "SparseTopKCategoricalAccuracy", "k": 2},
            {"type": "OneHotIoU", "num_classes": 2, "target_class_ids": [0]}, "kld", None, []]
_OPTIMIZERS = ["adam", "sgd", "nadam", "lion", "adafactor", "ftrl", "lamb", "adamw", "muon",
               {"type": "SGD", "learning_rate": 0.5, "momentum": 0.9},
               {"type": "Adam", "clipnorm": 1.0}, {"type": "LossScaleOptimizer",
                                                   "inner_optimizer": "sgd"},
               {"type": "RMSprop", "learning_rate": {"type": "CosineDecay",
                                                      "initial_learning_rate": 0.1,
                                                      "decay_steps": 10}}]
_DEVICES = ["/cpu:0", "cpu:0", "/device:CPU:0", "/gpu:3", "garbage", "cpu:x", "cpu:0/gpu:0",
            "/job:localhost/replica:0/task:0/device:CPU:0", "", "/task:x", None]
_DTYPES = ["float32", "float16", "bfloat16", "float64", "int32", "int64", "uint8", "bool",
           "string", "complex64", "int4", "float8_e4m3fn", "garbage", ""]
BUILD_VALUES = st.one_of(BUILD_SCALARS, st.lists(BUILD_SCALARS, max_size=3))
SHAPES = st.lists(st.one_of(st.none(), st.integers(1, 6)), max_size=3)


@st.composite
def build_mutation(draw) -> tuple[str, Any]:
    """mnist.yaml or multi_io.yaml with one or two plausible changes, sometimes junk after."""
    rel = pick(draw, BUILD_SOURCES)
    data = copy.deepcopy(ORIGINAL_DATA[rel])
    model, comp = data["model"], data["compile"]
    ops = [pick(draw, ["layer", "layer", "arg", "loss", "metric", "optimizer", "input",
                       "outputs", "precision", "device", "freeze"])
           for _ in range(draw(st.integers(1, 2)))]
    if draw(st.integers(0, 5)) == 0:
        ops.append("junk")  # last: it may break the structure the others rely on
    for op in ops:
        layers = model["layers"]
        i = draw(st.integers(0, len(layers) - 1))
        if op == "layer":
            keep = {k: v for k, v in layers[i].items() if k in ("name", "inputs")}
            layers[i] = {**copy.deepcopy(pick(draw, _LAYERS)), **keep}
        elif op == "arg":
            arg = pick(draw, ["units", "activation", "use_bias", "dtype", "name", "inputs"])
            layers[i][arg] = draw(BUILD_SCALARS) if draw(st.booleans()) else pick(
                draw, ["sigmoid", "linear", "log_softmax", "gelu", "threshold", "glu"])
        elif op == "loss":
            value = pick(draw, _LOSSES)
            if isinstance(comp["loss"], dict) and draw(st.booleans()):
                comp["loss"][pick(draw, sorted(comp["loss"]))] = value
            else:
                comp["loss"] = value
        elif op == "metric":
            comp["metrics"] = [pick(draw, _METRICS) for _ in range(draw(st.integers(0, 2)))] \
                if draw(st.booleans()) else pick(draw, _METRICS)
        elif op == "optimizer":
            comp["optimizer"] = pick(draw, _OPTIMIZERS)
        elif op == "input":
            spec = model["inputs"][pick(draw, sorted(model["inputs"]))]
            if draw(st.booleans()):
                spec["shape"] = draw(SHAPES)
            else:
                spec["dtype"] = pick(draw, _DTYPES)
        elif op == "outputs":
            names = [layer["name"] for layer in layers if "name" in layer]
            model["outputs"] = [pick(draw, names) for _ in range(draw(st.integers(0, 3)))] \
                if draw(st.booleans()) else pick(draw, names)
        elif op == "precision":
            data["runtime"] = {"precision": pick(draw, ["mixed_float16", "mixed_bfloat16"])}
        elif op == "device":
            data["runtime"] = {"distribution": {"strategy": pick(draw, ["one_device", "mirrored"]),
                                                "device": pick(draw, _DEVICES)}}
        elif op == "freeze":
            model["freeze"] = [pick(draw, ["dense_*", "*", "predictions", "nothing", "[",
                                           "trunk"]) for _ in range(draw(st.integers(1, 2)))]
        else:  # a value (not a whole section or layer) of another type
            paths = [p for p in _paths(data) if p and p[0] in ("model", "compile")
                     and not isinstance(_get(data, p), (dict, list))]
            _set(data, pick(draw, paths), draw(BUILD_VALUES))
    return rel, data


@settings(FUZZ, max_examples=16)
@given(case=build_mutation())
def test_validate_build_never_crashes(tree, case):
    rel, data = case
    path = _write(tree, rel, _dump(data))
    try:
        load_config(path)
        event("passes validate, so --build builds it")
    except TrainctlError:
        event("refused by validate")
    try:
        check(invoke(["validate", "--build", str(path)]), path)
    finally:  # runtime.precision is process-global in Keras: leave no mixed policy behind
        import keras

        keras.mixed_precision.set_global_policy("float32")
