"""What ``trainctl smoke`` prints: one row per config, the warnings, the summary line,
and the exit code (0 all passed, 2 any invalid, else 1; 130/143 after a signal).

Example:
    >>> print(format_row(result, width=40))
    ok         3.1s  configs/mnist.yaml
    >>> exit_code(results)
    0
"""

from __future__ import annotations

from trainctl.errors import ExitCode
from trainctl.run.smoke import FAILED, INVALID, OK, SKIPPED, STOPPED, SmokeResult


def exit_code(results: list[SmokeResult]) -> ExitCode:
    """130 / 143 when a signal stopped the run, else 0 when every config passed, else 2
    if one is invalid, else 1."""
    stopped = [r for r in results if r.status == STOPPED]
    if stopped:
        return ExitCode(stopped[0].exit or int(ExitCode.INTERRUPTED))
    if any(r.status == INVALID for r in results):
        return ExitCode.USAGE
    if any(r.status == FAILED for r in results):
        return ExitCode.FAILED
    return ExitCode.OK


def format_row(result: SmokeResult, width: int) -> str:
    """``ok       3.1s  configs/mnist.yaml`` (+ the error's first line, or for a passed
    config why it ran in a child process and how many warnings it printed: those are
    in its JUnit ``<system-err>`` and listed under the table), padded to ``width``."""
    row = f"{result.status:<8}{result.seconds:6.1f}s  {str(result.config):<{width}}"
    count = len(result.warnings)
    notes = [result.note] if result.note else []
    if count:
        notes.append(f"{count} warning{'s' if count != 1 else ''}")
    last = result.first_line or "; ".join(notes)
    return f"{row}  {last}".rstrip()


def format_warnings(results: list[SmokeResult]) -> str:
    """Every config's warnings, for under the table ("" when none)::

        warnings:
          configs/a.yaml: warning: metric m:M defines reset_states(), ...
    """
    lines = [f"  {r.config}: {line.strip()}" for r in results for line in r.warnings]
    return "\n".join(["warnings:", *lines]) if lines else ""


def format_summary(results: list[SmokeResult], seconds: float) -> str:
    """``35 configs: 34 ok, 1 failed, 0 invalid in 61.2s`` (``, 1 stopped, 3
    skipped`` after a signal), below the configs' warnings (:func:`format_warnings`)."""
    counts = {s: sum(r.status == s for r in results)
              for s in (OK, FAILED, INVALID, STOPPED, SKIPPED)}
    stopped = "".join(f", {counts[s]} {s}" for s in (STOPPED, SKIPPED) if counts[s])
    line = (f"{len(results)} config{'s' if len(results) != 1 else ''}: {counts[OK]} ok, "
            f"{counts[FAILED]} failed, {counts[INVALID]} invalid{stopped} in {seconds:.1f}s")
    return "\n".join(filter(None, [format_warnings(results), line]))
