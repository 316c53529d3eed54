"""Read a child process's output a line at a time, each read bounded.

``proc.stdout.readline()`` blocks until the child prints or exits, so a child that hangs
before its banner hangs the test until the run's timeout kills every test. A thread
drains the pipe into a queue instead, and :meth:`OutputLines.next` waits a set time.
"""

from __future__ import annotations

import queue
import subprocess
import threading


class OutputLines:
    """The lines of ``proc``'s text stdout, read by a daemon thread as they come."""

    def __init__(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None, "start the process with stdout=subprocess.PIPE"
        self.proc, self._lines = proc, queue.Queue[str]()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self._lines.put(line)
        self._lines.put("")  # end of output

    def next(self, timeout: float = 60.0) -> str:
        """The next line ("" once the output ended); AssertionError after ``timeout`` s."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from the process in {timeout:.0f} s "
                                 f"(exit status {self.proc.poll()})") from None

    def take(self, count: int, timeout: float = 60.0) -> list[str]:
        """The next ``count`` lines, each within ``timeout`` s."""
        return [self.next(timeout) for _ in range(count)]
