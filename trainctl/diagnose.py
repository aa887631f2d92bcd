"""Exception text for trainctl's messages: Keras's wrapping removed, a plug-in's bug found.

Keras hands back a layer's error bolded with terminal colour codes, wrapped in
"Could not automatically infer the output shape ... Error encountered:", and
followed by its arguments; and it re-raises the original ``from None``. So a
NameError in a plug-in layer's ``call`` reads like a shape problem.
:func:`exception_text` cleans the text; :func:`plugin_bug` finds a Python error
raised in the user's own code behind it, with its file and line.

Example:
    >>> bug = plugin_bug(exc)     # exc: what calling a plug-in layer raised
    >>> str(bug)
    "NameError: name 'undefined_name' is not defined (raised at my_layers.py:8, in call: ...)"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from trainctl.errors import printable


# Keras wraps a layer's error in bold (\x1b[1m ... \x1b[0m): shown as text in a message
# that printable() makes one line, so it goes. Any SGR/CSI sequence, to be safe.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# Keras ends a call()'s error with its arguments, one per line below this header; when
# the message is cut to its first lines, the header is left with nothing after it.
_DANGLING_ARGUMENTS = re.compile(r"\s*Arguments received by [\w.]+\(\):\s*$")


def exception_text(exc: BaseException | str, lines: int | None = None) -> str:
    """The text of an exception, fit to go into a trainctl message.

    Terminal colour codes are removed (Keras bolds the heart of a layer's error), the
    first ``lines`` non-blank lines are kept (joined by spaces), and Keras's
    "Arguments received by X.call():" header is dropped when nothing follows it.

    Args:
        exc: the exception (or its text).
        lines: how many non-blank lines to keep; ``None`` keeps all, line breaks kept.

    Example:
        >>> exception_text("Exception encountered when calling Reshape.call().\\n\\n"
        ...                "\\x1b[1mThe total size must be unchanged\\x1b[0m\\n\\n"
        ...                "Arguments received by Reshape.call():\\n  • inputs=...", lines=3)
        'Exception encountered when calling Reshape.call(). The total size must be unchanged'
    """
    text = _ANSI.sub("", str(exc)).strip()
    if lines is not None:
        text = " ".join([ln.strip() for ln in text.splitlines() if ln.strip()][:lines])
    return _DANGLING_ARGUMENTS.sub("", text)


# Errors that say the Python code is wrong (not the values it was given): raised in a
# plug-in's own file they are a bug there, whatever Keras wraps them in.
_CODE_ERRORS = (NameError, AttributeError, TypeError, ImportError, LookupError,
                AssertionError, ArithmeticError, NotImplementedError, RecursionError)
# Library code, by top-level module, wherever it is installed (trainctl from a checkout);
# with the standard library and site-packages, their frames are not the user's code.
_LIBRARIES = ("keras", "tensorflow", "tf_keras", "numpy", "jax", "torch", "optree",
              "ml_dtypes", "trainctl")


@dataclass(frozen=True)
class CodeBug:
    """A Python error raised by the user's own code (a plug-in), and where.

    Args:
        type: the exception's class name (``NameError``).
        message: its message, without Keras's wrapping.
        file: the user's file, relative to the working directory when inside it.
        line: the line in ``file`` (the last user frame of the traceback).
        function: the function running there (``call``).
        source: that line of code, stripped ("" when unknown).
    """

    type: str
    message: str
    file: str
    line: int
    function: str
    source: str = ""

    def __str__(self) -> str:
        message = f": {self.message}" if self.message else ""  # a bare `assert` has none
        code = f": {self.source}" if self.source else ""
        return (f"{self.type}{message} (raised at {self.file}:{self.line}, "
                f"in {self.function}{code})")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions behind it (causes and contexts, suppressed ones too:
    Keras re-raises a layer's error ``from None``), outermost first."""
    seen: list[BaseException] = []
    while exc is not None and all(exc is not e for e in seen) and len(seen) < 20:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _library_dirs() -> list[str]:
    """Folders of code that is not the user's (but see :func:`_user_frame`: an imported
    plug-in is the user's wherever it is installed)."""
    import os
    import sys
    import sysconfig

    paths = sysconfig.get_paths()
    dirs = {paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    for name in _LIBRARIES:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            dirs.add(os.path.dirname(os.path.abspath(file)))
    return [os.path.join(d, "") for d in dirs]


def _user_frame(exc: BaseException, libraries: list[str]) -> Any:
    """The last frame of ``exc``'s traceback in user code (a FrameSummary), or None:
    outside the libraries, or in a plug-in the config imported (one installed in
    site-packages too)."""
    import os
    import traceback

    from trainctl.plugins import plugin_paths

    plugins, user = plugin_paths(), None
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.filename
        if name.startswith("<"):
            continue
        path = os.path.abspath(name)
        if path.startswith(tuple(libraries)) and not path.startswith(plugins):
            continue
        user = frame
    return user


def _shown_path(file: str) -> str:
    import os

    relative = os.path.relpath(file)
    return file if relative.startswith("..") else relative


def _unwrapped(exc: BaseException) -> str:
    """The first line of ``exc``'s message, from inside Keras's wrapping ("Could not
    automatically infer the output shape ... Error encountered: <original>") if any."""
    _head, found, tail = exception_text(exc).rpartition("Error encountered:")
    return exception_text(tail if found else str(exc), lines=1)


def plugin_bug(exc: BaseException, *, any_error: bool = False) -> CodeBug | None:
    """A Python error (NameError, AttributeError, TypeError, ...) raised in the user's
    code, found behind ``exc``; ``None`` for anything else (a shape or value problem,
    an error raised inside Keras or TensorFlow).

    Args:
        exc: what calling (or building) a layer or model raised.
        any_error: also an error of any other type the user's code raised itself (a
            ``ValueError`` of its own shape check, a ``RuntimeError``): where it came
            from, though it may be about the input.

    Example:
        >>> plugin_bug(exc)  # a plug-in layer's call() used an undefined name
        CodeBug(type='NameError', message="name 'undefined_name' is not defined",
                file='my_layers.py', line=8, function='call', source='return x * undefined_name')
    """
    libraries = _library_dirs()
    for cause in reversed(_chain(exc)):  # the original error first
        if not (any_error or isinstance(cause, _CODE_ERRORS)):
            continue
        frame = _user_frame(cause, libraries)
        if frame is None:
            continue
        return CodeBug(type(cause).__name__, printable(_unwrapped(cause), 300),
                       _shown_path(frame.filename), frame.lineno or 0, frame.name,
                       (frame.line or "").strip())
    return None
