# -*- test-case-name: tests.interop.test_sip_sipp -*-
"""
Run SIPp (Debian C{sip-tester}) scenarios against the gateway's SIP stack.

L{runSIPp} starts C{sipp} as a child of the running reactor
(C{spawnProcess}), in a temporary working directory of its own (SIPp
writes its logs into the current directory), bound to 127.0.0.1 with the
options PEERS.md requires (C{-i 127.0.0.1 -bind_local -mi 127.0.0.1 -ci
127.0.0.1 -nostdin -timeout N -timeout_error}), and fires with a
L{SIPpResult} once it exits.  If it is still running after its time bound
(plus a margin) the runner kills exactly the process it started.

Scenarios live in C{tests/fixtures/sipp/}.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated

from tests.interop.peers import freeUDPAndTCPPort as freeUDPAndTCPPort
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from tests.interop.peers import PeerUnavailable

__all__ = ["SIPpResult", "runSIPp", "scenarioPath", "freeUDPAndTCPPort"]

SCENARIOS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "sipp")


def scenarioPath(name: str) -> str:
    """
    @return: The path of scenario C{name} in C{tests/fixtures/sipp}.
    """
    return os.path.join(SCENARIOS, name)


@dataclass(frozen=True)
class SIPpResult:
    """
    How a SIPp run ended.

    @ivar exitCode: SIPp's exit status (0: every call succeeded), or
        L{None} if it was killed.
    @ivar output: stdout and stderr.
    @ivar logs: The contents of the log files it wrote, by file name.
    """

    exitCode: int | None
    output: str
    logs: dict[str, str]

    def describe(self) -> str:
        """
        Everything, for a failure message.
        """
        parts = [f"exit code {self.exitCode}", self.output[-4000:]]
        for name, text in sorted(self.logs.items()):
            parts.append(f"--- {name}\n{text[-4000:]}")
        return "\n".join(parts)


class _SIPpProtocol(ProcessProtocol):
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.output: list[bytes] = []
        self.done: Deferred[SIPpResult] = Deferred()
        self.killer: Any = None

    def outReceived(self, data: bytes) -> None:
        self.output.append(data)

    def errReceived(self, data: bytes) -> None:
        self.output.append(data)

    def processEnded(self, reason: Failure) -> None:
        if self.killer is not None and self.killer.active():
            self.killer.cancel()
        code: int | None
        if reason.check(ProcessDone):
            code = 0
        elif reason.check(ProcessTerminated):
            code = reason.value.exitCode
        else:  # pragma: no cover
            code = None
        logs = {}
        for path in glob.glob(os.path.join(self.directory, "*")):
            if path.endswith(".xml"):
                continue
            try:
                with open(path, errors="replace") as f:
                    logs[os.path.basename(path)] = f.read()
            except OSError:
                pass
        shutil.rmtree(self.directory, ignore_errors=True)
        self.done.callback(
            SIPpResult(code, b"".join(self.output).decode("utf-8", "replace"), logs)
        )


def runSIPp(
    reactor: Any,
    scenario: str,
    *,
    remote: str | None,
    localPort: int,
    transport: str = "u1",
    service: str = "service",
    calls: int = 1,
    timeout: int = 20,
    extra: Sequence[str] = (),
) -> Deferred[SIPpResult]:
    """
    Run one SIPp scenario.

    @param scenario: A scenario file name in C{tests/fixtures/sipp}.
    @param remote: C{host:port} to send to (UAC), or L{None} (UAS).
    @param localPort: SIPp's SIP port.
    @param transport: C{u1} (UDP) or C{t1} (TCP, one socket).
    @param service: The Request-URI user (C{[service]}).
    @param timeout: SIPp's global timeout in seconds (C{-timeout}); the
        process is killed if it runs 10 s longer.
    @raise PeerUnavailable: C{sipp} is not installed.
    """
    program = shutil.which("sipp")
    if program is None:
        raise PeerUnavailable("sipp is not installed (Debian sip-tester)")
    directory = tempfile.mkdtemp(prefix="stoxgw-sipp-")
    args = [program]
    if remote is not None:
        args.append(remote)
    args += [
        "-sf",
        scenarioPath(scenario),
        "-s",
        service,
        "-m",
        str(calls),
        "-t",
        transport,
        "-p",
        str(localPort),
        "-i",
        "127.0.0.1",
        "-bind_local",
        "-mi",
        "127.0.0.1",
        "-ci",
        "127.0.0.1",
        "-nostdin",
        "-timeout",
        f"{timeout}s",
        "-timeout_error",
        "-trace_err",
        "-trace_logs",
        "-trace_msg",
        *extra,
    ]
    protocol = _SIPpProtocol(directory)
    process = reactor.spawnProcess(
        protocol,
        program,
        args,
        env={"PATH": os.environ.get("PATH", "")},
        path=directory,
    )

    def kill() -> None:
        try:
            process.signalProcess("KILL")
        except Exception:
            pass

    protocol.killer = reactor.callLater(timeout + 10, kill)
    return protocol.done
