"""JUnit XML of a ``trainctl smoke`` run: one testcase per config, for CI dashboards.

The layout is the one pytest writes (``<testsuites><testsuite><testcase>``, a
``<failure message=... type=...>`` with the details as text) which GitHub Actions
reporters, GitLab and Jenkins read. A config a signal stopped is an ``<error>``, the
ones not run after it ``<skipped>``; a run's warnings (its stderr) are its
``<system-err>``. Written with xml.etree, so every value is
escaped; characters XML 1.0 cannot hold at all (control characters from a
program's output) are replaced first.

Example:
    >>> write_junit(results, Path("smoke.xml"), seconds=61.2)
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from trainctl.run.smoke import FAILED, INVALID, SKIPPED, STOPPED, SmokeResult

# What XML 1.0 forbids even escaped: C0 controls other than tab, newline, carriage
# return; surrogates; U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot represent replaced by ``?``.

    Example:
        >>> xml_text("a\\x1b[0mb")
        'a?[0mb'
    """
    return _NOT_XML.sub("?", str(text))


def junit_tree(results: list[SmokeResult], seconds: float,
               suite: str = "trainctl smoke") -> ET.ElementTree:
    """The JUnit document of ``results``.

    Args:
        results: one per config, in run order.
        seconds: the whole smoke run's wall time.
        suite: the testsuite's name.
    """
    failures = str(sum(r.status in (FAILED, INVALID) for r in results))
    errors = str(sum(r.status == STOPPED for r in results))
    root = ET.Element("testsuites", name=suite, tests=str(len(results)),
                      failures=failures, errors=errors, time=f"{seconds:.3f}")
    testsuite = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(results)), failures=failures,
        errors=errors, skipped=str(sum(r.status == SKIPPED for r in results)),
        time=f"{seconds:.3f}",
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        hostname=socket.gethostname())
    for result in results:
        testsuite.append(testcase(result))
    ET.indent(root)
    return ET.ElementTree(root)


def testcase(result: SmokeResult) -> ET.Element:
    """One config's ``<testcase>``: a ``<failure>`` (type ``failed`` or ``invalid``)
    when it did not pass, an ``<error>`` (type ``interrupted``) when a signal stopped it,
    ``<skipped>`` when it was not run; what the run printed as ``<system-out>``, its
    stderr (warnings) as ``<system-err>``."""
    name = xml_text(str(result.config))
    case = ET.Element("testcase", classname="trainctl.smoke", name=name, file=name,
                      time=f"{result.seconds:.3f}")
    element = {FAILED: "failure", INVALID: "failure", STOPPED: "error",
               SKIPPED: "skipped"}.get(result.status)
    if element == "skipped":
        ET.SubElement(case, element, message=xml_text(result.first_line))
    elif element is not None:
        failure = ET.SubElement(case, element, message=xml_text(result.first_line),
                                type="interrupted" if result.status == STOPPED else result.status)
        failure.text = xml_text("\n\n".join(t for t in (result.message, result.detail) if t))
    out = "\n".join(filter(None, [result.note, result.output]))
    if out:
        ET.SubElement(case, "system-out").text = xml_text(out)
    if result.errors:
        ET.SubElement(case, "system-err").text = xml_text(result.errors)
    return case


def write_junit(results: list[SmokeResult], path: Path, seconds: float) -> None:
    """Write the JUnit XML of ``results`` to ``path`` (atomically, UTF-8).

    Raises:
        UsageError: the file cannot be written (naming it and the reason).

    Example:
        >>> write_junit(smoke_all(configs, runs_dir), Path("smoke.xml"), seconds=61.2)
    """
    from trainctl.artifacts import atomic_write, write_failed

    tree = junit_tree(results, seconds)
    text = ET.tostring(tree.getroot(), encoding="unicode")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n")
    except OSError as exc:
        raise write_failed(path, exc) from None
