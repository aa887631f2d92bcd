"""A YAML syntax error, reported where the mistake is rather than where PyYAML noticed it.

PyYAML notices an unclosed quote only at the end of the file and an unclosed ``[``
or ``{`` at the first token that cannot continue it, often on the next line; a key
without ``:`` on the line after it. Its ``context_mark`` points at the opening
character, its ``problem_mark`` at the place it gave up. :func:`syntax_error` picks
the place to blame and says what is open and where YAML gave up, with a hint.

Example:
    >>> syntax_error(exc, text, "exp.yaml")    # name: "mnist-mlp   (line 4, no closing ")
    ConfigError('exp.yaml:4:7: YAML syntax error: a quoted string starts here and is never closed ...')
"""

from __future__ import annotations

import yaml

from trainctl.errors import ConfigError, Location, printable


def _mark_location(display: str, mark: yaml.Mark) -> Location:
    return Location(display, mark.line + 1, mark.column + 1)


def _at(mark: yaml.Mark, start: yaml.Mark) -> str:
    """Where ``mark`` is, said from ``start``: "at column 12" on its line, else with the line."""
    if mark.line == start.line:
        return f"at column {mark.column + 1}"
    return f"at line {mark.line + 1}, column {mark.column + 1}"


def _last_line(mark: yaml.Mark) -> int:
    """The last line of a file whose end is ``mark`` (after a final newline: the line before)."""
    return mark.line if mark.column == 0 and mark.line > 0 else mark.line + 1


# What opened a construct YAML reports as unclosed, by its first character.
_OPENED = {'"': ("a quoted string", '"'), "'": ("a quoted string", "'"),
           "[": ("a list ('[')", "]"), "{": ("a mapping ('{')", "}")}
_CONTEXTS = ("while scanning a quoted scalar", "while parsing a flow")


def _never_closed(problem: str, end: yaml.Mark) -> str | None:
    """How the file went on past an unclosed construct, from PyYAML's problem text."""
    if problem == "found unexpected end of stream" or problem.endswith("'<stream end>'"):
        return f"the file ended at line {_last_line(end)}"
    if problem == "found unexpected document separator":
        return f"a new document ('---') starts at line {end.line + 1}"
    return None


def _unclosed(exc: yaml.MarkedYAMLError, display: str) -> ConfigError | None:
    """A quote, ``[`` or ``{`` left open, reported where it was opened; ``None`` otherwise.

    PyYAML notices an open quote only at the end of the file, and an open bracket at
    the first token that cannot continue it (often the next line): its problem mark
    is far from the mistake, its context mark is on it.
    """
    start, end = exc.context_mark, exc.problem_mark
    if start is None or end is None or start.buffer is None:
        return None
    what, closer = _OPENED.get(start.buffer[start.pointer:start.pointer + 1], (None, None))
    if what is None or not (exc.context or "").startswith(_CONTEXTS):
        return None
    problem = exc.problem or ""
    ended = _never_closed(problem, end)
    if ended is not None:
        message = f"{what} starts here and is never closed ({ended})"
    elif problem.startswith("expected ','"):  # a flow collection: "..., but got ':'"
        found = problem.rsplit("but got ", 1)[-1]
        message = (f"{what} starts here and is not closed: YAML expected ',' or "
                   f"{closer!r} {_at(end, start)} but found {found}")
    else:
        return None  # e.g. a bad escape inside a quoted string: the problem mark is right
    if closer in "\"'":
        hint = (f"add the closing {closer} where the value ends on line {start.line + 1}, "
                "or remove the opening one")
    else:
        items = "item" if closer == "]" else "key: value pair"
        hint = (f"add the missing {closer!r} after its last {items} (on line "
                f"{start.line + 1} if it ends there); separate {items}s with ','")
    return ConfigError(f"YAML syntax error: {message}", where=_mark_location(display, start),
                       hint=hint)


def _keyless(exc: yaml.MarkedYAMLError, display: str) -> ConfigError | None:
    """A line in a mapping with no ``:`` after its key, reported on that line.

    PyYAML notices only on the next line (its problem mark); its context mark is
    the key.
    """
    start = exc.context_mark
    if exc.context != "while scanning a simple key" or start is None or start.buffer is None:
        return None
    line = start.buffer[start.pointer:].split("\n", 1)[0].strip().rstrip("\0")
    return ConfigError(
        f"YAML syntax error: expected 'key: value', but no ':' follows {printable(line, 40)!r}",
        where=_mark_location(display, start),
        hint="add ': value' after the key, or indent the line under the key it belongs to")


def _runaway_quote(exc: yaml.MarkedYAMLError, text: str,
                   display: str) -> ConfigError | None:
    """A quoted string running over several lines up to the error: a closing quote missing.

    An open quote that a later quote closes swallows the lines between; YAML then
    fails just after that later quote, far from the open one. A quoted string that
    ends on the error's line and started on an earlier one is reported where it starts.
    """
    problem = exc.problem_mark
    if problem is None:
        return None
    found = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.pointer >= problem.pointer:
                break
            if (isinstance(token, yaml.ScalarToken) and token.style in ('"', "'")
                    and token.start_mark.line < token.end_mark.line == problem.line):
                found = token
    except yaml.YAMLError:
        pass  # the scanner stops at its own error: the tokens before it are enough
    if found is None:
        return None
    start, end = found.start_mark, found.end_mark
    return ConfigError(
        f"YAML syntax error: a quoted string starts here and runs on to line {end.line + 1}, "
        f"column {end.column}, where YAML then found: {_described(exc)}",
        where=_mark_location(display, start),
        hint=f"is the closing {found.style} of this value missing? add it on line "
             f"{start.line + 1}")


def _described(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem, with its context and where that is when on another line."""
    problem = exc.problem or str(exc)
    if not exc.context:
        return problem
    start, end = exc.context_mark, exc.problem_mark
    if start is not None and end is not None and start.line != end.line:
        return f"{problem} ({exc.context} {_at(start, end)})"
    return f"{problem} ({exc.context})"


def syntax_error(exc: yaml.MarkedYAMLError, text: str, display: str) -> ConfigError:
    """The ConfigError for a YAML syntax error, placed where the mistake most likely is.

    An unclosed quote, list or mapping is reported where it was opened, saying where
    YAML noticed; so is a key with no ``:`` and a quoted string that runs on over
    several lines up to the error; anything else is reported where YAML noticed it.

    Args:
        exc: PyYAML's error, with its problem mark (where it noticed) and context mark
            (where the construct it was reading started).
        text: the YAML text that was parsed.
        display: the file name for the message.

    Example:
        >>> str(syntax_error(exc, 'name: "mnist-mlp\\nseed: 1\\n', "q1.yaml")).splitlines()[0]
        'q1.yaml:1:7: YAML syntax error: a quoted string starts here and is never closed
        (the file ended at line 2)'
    """
    found = (_unclosed(exc, display) or _keyless(exc, display)
             or _runaway_quote(exc, text, display))
    if found is not None:
        return found
    mark = exc.problem_mark or exc.context_mark
    return ConfigError(f"YAML syntax error: {_described(exc)}",
                       where=_mark_location(display, mark) if mark else Location(display),
                       hint="check indentation, colons and quotes on this line")
