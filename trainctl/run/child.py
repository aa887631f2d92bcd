"""A child process that writes one file of a run (model.png by Graphviz, curves.png by
a drawing process), collected without ever leaving half a file or blocking the run.

The child writes a temp file in the run folder; :meth:`FileChild.collect` waits for it
(bounded), renames the temp file once the child exited 0, and otherwise returns a
note for run.json. A failure is a note, never a failed run: the run's status is
written next and matters more than its pictures.

Example:
    >>> child = FileChild("model.png", tmp, proc, errors, who="Graphviz's dot")
    >>> child.collect(run, timeout=30.0)     # None: model.png is in the run folder
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass
class FileChild:
    """A running child that writes ``tmp``, to become ``run/name`` once it succeeds.

    Args:
        name: the file's name in the run folder (``model.png``).
        tmp: the temp file the child writes (in the run folder: the rename is atomic).
        proc: the child (a ``subprocess.Popen``).
        errors: the file its stderr goes to (not a pipe nobody reads until it ends,
            which would block a chatty child).
        who: the child as notes name it (``Graphviz's dot``).
        last_line: the note quotes the last line of stderr (a Python traceback's says
            what went wrong) instead of the first.
    """

    name: str
    tmp: Path
    proc: Any
    errors: IO[bytes]
    who: str
    last_line: bool = False

    def collect(self, target_folder: Path, timeout: float) -> str | None:
        """Wait up to ``timeout`` seconds, then move the file into ``target_folder``.

        A child still running then, or a wait that is interrupted (Ctrl-C: not passed
        on), is killed and its file left out.

        Returns:
            None when the file is in place, or the child exited 0 without writing it
            (it had nothing to draw); else a note saying why it is missing.
        """
        try:
            self.proc.wait(timeout=timeout)
        except BaseException as exc:  # a timeout, or a (second) Ctrl-C while waiting
            self.stop()
            if isinstance(exc, subprocess.TimeoutExpired):
                return f"{self.name} not written: {self.who} took over {timeout:g} s"
            return f"{self.name} not written: interrupted while {self.who} drew it"
        self.errors.seek(0)
        lines = self.errors.read().decode(errors="replace").strip().splitlines()
        self.errors.close()
        if self.proc.returncode == 0:
            if self.tmp.is_file():
                self.tmp.replace(Path(target_folder) / self.name)
            return None
        self.tmp.unlink(missing_ok=True)
        quoted = (lines[-1] if self.last_line else lines[0]) if lines else ""
        return (f"{self.name} not written: {self.who} exited {self.proc.returncode}"
                + (f": {quoted}" if quoted else ""))

    def stop(self) -> None:
        """Kill and reap the child at once and remove what it may have begun to write."""
        self.proc.kill()
        self.proc.wait()
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        self.errors.close()
        self.tmp.unlink(missing_ok=True)
