# -*- test-case-name: tests.interop.test_sip_pjsua2 -*-
"""
Run the pjsua2 agent (L{tests.interop.pjsua2_agent}) as a child of the
running reactor and follow its events.

The agent is started with C{sys.executable -P} (the script's directory is
not put on C{sys.path}), so pjsua2 and its threads never enter trial's
process.  L{PJSUA2Agent.stop} asks it to quit, and kills exactly the
process it started if it has not exited within its time bound.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from tests.interop.peers import PeerUnavailable

__all__ = ["PJSUA2Agent", "AgentTimeout", "startAgent"]

AGENT = os.path.join(os.path.dirname(__file__), "pjsua2_agent.py")

Event = dict[str, Any]

#: PJSIP's message trace line: C{RX 407 bytes Response msg ... from UDP
#: 127.0.0.1:33033:}, the message (that many bytes), C{--end msg--}.
_TRACE = re.compile(rb"\b(RX|TX) (\d+) bytes [^\n]*:\r?\n")


class AgentTimeout(Exception):
    """
    An awaited event did not come in time.
    """


class PJSUA2Agent(ProcessProtocol):
    """
    The running agent: its events in order, and waits for them.

    @ivar events: Every event received so far.
    @ivar ended: Fires with the exit code once the process ended.
    """

    def __init__(self, reactor: Any, directory: str) -> None:
        self.reactor = reactor
        self.directory = directory
        self.logPath = os.path.join(directory, "pjsua2.log")
        self.events: list[Event] = []
        self.output: list[str] = []
        self.ended: Deferred[int | None] = Deferred()
        self.exitCode: int | None = None
        self._finished = False
        self._buffer = b""
        self._waiters: list[tuple[Callable[[Event], bool], Deferred[Event], Any]] = []

    # -- process protocol ------------------------------------------------

    def outReceived(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\n", 1)
            line = raw.decode("utf-8", "replace")
            self.output.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue  # PJSIP's start-up log lines
            if isinstance(event, dict) and "event" in event:
                self._eventReceived(event)

    def errReceived(self, data: bytes) -> None:
        self.output.append(data.decode("utf-8", "replace"))

    def processEnded(self, reason: Failure) -> None:
        self._finished = True
        if reason.check(ProcessDone):
            self.exitCode = 0
        elif isinstance(reason.value, ProcessTerminated):
            self.exitCode = reason.value.exitCode
        waiters, self._waiters = self._waiters, []
        for _, d, timer in waiters:
            timer.cancel()
            d.errback(AgentTimeout("agent exited\n" + self.describe()))
        self.ended.callback(self.exitCode)

    # -- use -------------------------------------------------------------

    def _eventReceived(self, event: Event) -> None:
        self.events.append(event)
        for waiter in list(self._waiters):
            match, d, timer = waiter
            if match(event):
                self._waiters.remove(waiter)
                timer.cancel()
                d.callback(event)

    def waitFor(
        self, match: Callable[[Event], bool], timeout: float = 10.0, since: int = 0
    ) -> Deferred[Event]:
        """
        Fire with the first event (from index C{since} on, past or future)
        that C{match} accepts; fail with L{AgentTimeout} after C{timeout}
        seconds or when the agent exits.
        """
        for event in self.events[since:]:
            if match(event):
                return succeed(event)
        d: Deferred[Event] = Deferred()
        if self._finished:
            d.errback(AgentTimeout("agent exited\n" + self.describe()))
            return d

        def expire() -> None:
            for waiter in self._waiters:
                if waiter[1] is d:
                    self._waiters.remove(waiter)
                    break
            d.errback(AgentTimeout(f"no such event in {timeout}s\n" + self.describe()))

        timer = self.reactor.callLater(timeout, expire)
        self._waiters.append((match, d, timer))
        return d

    def waitForEvent(
        self, name: str, timeout: float = 10.0, since: int = 0, **fields: Any
    ) -> Deferred[Event]:
        """
        L{waitFor} an event called C{name} whose C{fields} have the given
        values.
        """
        return self.waitFor(
            lambda e: e["event"] == name
            and all(e.get(k) == v for k, v in fields.items()),
            timeout,
            since,
        )

    def send(self, cmd: str, **fields: Any) -> None:
        """
        Send one command.
        """
        fields["cmd"] = cmd
        assert self.transport is not None
        self.transport.write(json.dumps(fields).encode("utf-8") + b"\n")

    def log(self) -> str:
        """
        The PJSIP log (messages included).
        """
        try:
            with open(self.logPath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def messages(self, direction: str = "RX") -> list[bytes]:
        """
        The SIP messages pjsua2 received (C{RX}) or sent (C{TX}), in
        order, from the message trace in its log (a message still being
        written is left out).
        """
        try:
            with open(self.logPath, "rb") as f:
                log = f.read()
        except OSError:
            return []
        found = []
        for match in _TRACE.finditer(log):
            start = match.end()
            end = start + int(match.group(2))
            complete = log[end : end + 20].lstrip(b"\r\n").startswith(b"--end msg--")
            if match.group(1).decode("ascii") == direction and complete:
                found.append(log[start:end])
        return found

    def describe(self) -> str:
        """
        Events, output and the log tail, for a failure message.
        """
        return "\n".join(
            [
                f"exit code {self.exitCode}",
                "--- output",
                "\n".join(self.output)[-6000:],
                "--- log",
                self.log()[-8000:],
            ]
        )

    def stop(self, timeout: float = 5.0) -> Deferred[None]:
        """
        Ask the agent to quit; kill it (by its PID) if it has not exited
        after C{timeout} seconds.  Fires once it is gone.
        """
        done: Deferred[None] = Deferred()
        if self._finished:
            shutil.rmtree(self.directory, ignore_errors=True)
            return succeed(None)
        try:
            self.send("quit")
            assert self.transport is not None
            self.transport.closeStdin()
        except Exception:
            pass

        def kill() -> None:
            try:
                assert self.transport is not None
                self.transport.signalProcess("KILL")
            except Exception:
                pass

        killer = self.reactor.callLater(timeout, kill)

        def gone(_: object) -> None:
            if killer.active():
                killer.cancel()
            shutil.rmtree(self.directory, ignore_errors=True)
            done.callback(None)

        self.ended.addBoth(gone)
        return done


def startAgent(
    reactor: Any,
    transport: str = "udp",
    *,
    port: int = 0,
    cert: str | None = None,
    ca: str | None = None,
    answer: int = 200,
    maxSeconds: float = 60.0,
) -> PJSUA2Agent:
    """
    Start the agent; wait for its C{ready} event (with its port) with
    L{PJSUA2Agent.waitForEvent}.

    @param cert: Our PEM certificate with its key (TLS server side; PJSIP
        also presents it as client certificate when a server asks).
    @param ca: The PEM certificates to trust (TLS client side; enables
        server certificate verification).
    @param answer: The final status for incoming calls (after 180).
    @raise PeerUnavailable: pjsua2 is not installed (C{pip install
        stoxgw[test]}).
    """
    if importlib.util.find_spec("pjsua2") is None:
        raise PeerUnavailable("pjsua2 is not installed (PyPI pjsua2-python)")
    directory = tempfile.mkdtemp(prefix="stoxgw-pjsua2-")
    agent = PJSUA2Agent(reactor, directory)
    args = [
        sys.executable,
        "-P",
        AGENT,
        "--transport",
        transport,
        "--port",
        str(port),
        "--log",
        agent.logPath,
        "--max-seconds",
        str(maxSeconds),
        "--answer",
        str(answer),
    ]
    if cert is not None:
        args += ["--cert", cert, "--key", cert]
    if ca is not None:
        args += ["--ca", ca]
    reactor.spawnProcess(
        agent,
        sys.executable,
        args,
        env=dict(os.environ),
        path=directory,
    )
    return agent
