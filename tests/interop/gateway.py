# -*- test-case-name: tests.interop -*-
"""
Run the gateway itself as C{twistd -n stoxgw} in a child process, for the
interop tests and the demo: from the source tree, logging to a file the
caller can watch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

#: The checkout's top directory (where C{stoxgw/} and C{twisted/plugins/} are).
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Gateway:
    """
    One C{twistd -n stoxgw --config FILE} process.
    """

    def __init__(self, configPath: str, directory: str) -> None:
        self.configPath = os.path.abspath(configPath)
        self.logPath = os.path.abspath(os.path.join(directory, "stoxgw.out"))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """
        Start the gateway; returns at once.
        """
        env = dict(os.environ, PYTHONPATH=TOP)
        self.process = subprocess.Popen(
            [
                sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                "--nodaemon", "--pidfile=", "stoxgw", "--config", self.configPath,
            ],
            stdout=open(self.logPath, "wb"),
            stderr=subprocess.STDOUT,
            cwd=TOP,
            env=env,
        )

    def output(self) -> str:
        """
        @return: what the gateway printed so far.
        """
        with open(self.logPath, errors="replace") as f:
            return f.read()

    def waitFor(self, text: str, count: int = 1, timeout: float = 20.0) -> str:
        """
        Wait until C{text} appears C{count} times in the output.

        @return: the output.
        @raise AssertionError: not within C{timeout} seconds, or the gateway exited.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = self.output()
            if output.count(text) >= count:
                return output
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen {count} time(s); gateway output:\n{self.output()}")

    def stop(self, timeout: float = 10.0) -> int:
        """
        Stop the gateway with SIGTERM (what systemd sends).

        @return: its exit status.
        """
        process, self.process = self.process, None
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        return process.returncode
