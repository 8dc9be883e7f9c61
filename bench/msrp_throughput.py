#!/usr/bin/env python3
# -*- test-case-name: tests.msrp -*-
"""
MSRP throughput benchmark: stoxgw's MSRP stack against a raw Twisted
baseline, measured in the same run.

Each case (1 and 100 connections by default) runs twice with the same load
generator:

  - I{stoxgw}: a real L{stoxgw.msrp.endpoint.MSRPEndpoint} on 127.0.0.1
    with one pre-created session per client connection (its handler accepts
    every message); every SEND goes through L{MSRPParser}, dispatch to the
    session, reassembly, the handler and a C{200} through the connection's
    scheduler.
  - I{baseline}: a plain Twisted L{Protocol} that buffers, frames requests
    on their end-line only (C{CRLF "-------" tid flag CRLF}, the tid read
    from the request line) and answers a canned C{MSRP tid 200 OK} with
    To-Path and From-Path swapped as bytes.

Both write the answers to one read with one transport write.

The servers run one at a time, each in its own process; the load generator
is a third process (plain sockets and L{selectors}, no Twisted), so what is
measured is the server's core.  The load generator keeps a bounded window
of pipelined, pre-serialized single-chunk SENDs (100-200 octets of
C{text/plain}) outstanding per connection and counts C{MSRP tid 200} lines.

Run from the top of the repository::

    python bench/msrp_throughput.py [--duration 5] [--connections 1,100]
        [--window 32] [--strict]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import re
import selectors
import socket
import string
import sys
import time
from typing import Any

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TOP not in sys.path:
    sys.path.insert(0, TOP)

TARGET = 0.50
"""
The stoxgw rate must be at least this fraction of the baseline rate.
"""

_OK_RE = re.compile(rb"MSRP [^ \r\n]+ 200[ \r]")
_TID_ALPHABET = string.ascii_lowercase + string.digits
_WORDS = (
    "hello there how are you doing today the meeting moved to three pm "
    "please bring the slides and coffee for everyone in the room thanks"
).split()


# -- servers ---------------------------------------------------------------


def _serverStats() -> float:
    """
    CPU seconds used by this process so far.
    """
    return time.process_time()


def _runStoxgwServer(sessions: int, pipe: Any) -> None:
    """
    Serve with a real L{MSRPEndpoint} until told to stop.

    Sends C{(port, [session URI text, ...])} through C{pipe}, then waits for
    C{"stop"} and answers with C{(messages handled, warnings logged)}.

    @param sessions: How many sessions to pre-create (one per client
        connection).
    @param pipe: The parent's end of a L{multiprocessing.Pipe}.
    """
    from twisted.internet import reactor
    from twisted.logger import LogLevel, globalLogBeginner
    from zope.interface import implementer

    from stoxgw.msrp.endpoint import MSRPEndpoint
    from stoxgw.msrp.session import IMSRPSessionHandler

    counts = {"messages": 0, "warnings": 0}
    warnings: list[str] = []

    def observer(event: dict[str, Any]) -> None:
        if event.get("log_level", LogLevel.info) >= LogLevel.warn:
            counts["warnings"] += 1
            if len(warnings) < 5:
                from twisted.logger import formatEvent

                warnings.append(formatEvent(event))

    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)

    @implementer(IMSRPSessionHandler)
    class AcceptingHandler:
        """
        Accepts every message.
        """

        def sessionBound(self) -> None:
            pass

        def messageReceived(self, message: Any) -> None:
            counts["messages"] += 1

        def nicknameRequested(self, nickname: str) -> int:
            return 200

        def sessionFailed(self, reason: Any) -> None:
            pass

    endpoint = MSRPEndpoint(reactor, "127.0.0.1", 0, transactionTimeout=30)
    endpoint.startListening()
    uris = [
        str(endpoint.createSession(AcceptingHandler()).localURI)
        for _ in range(sessions)
    ]
    pipe.send((endpoint.port, uris))
    _serveUntilStopped(reactor, pipe, lambda: (counts["messages"], warnings))


def _runBaselineServer(sessions: int, pipe: Any) -> None:
    """
    Serve with the raw Twisted baseline until told to stop.

    @param sessions: How many session URIs to make up for the client (the
        baseline does not look at them).
    @param pipe: The parent's end of a L{multiprocessing.Pipe}.
    """
    from twisted.internet import reactor
    from twisted.internet.protocol import Factory, Protocol

    counts = {"messages": 0}

    class RawMSRP(Protocol):
        """
        Frames requests on their end-line and answers C{200 OK}, nothing
        more.
        """

        def connectionMade(self) -> None:
            self.buffer = b""
            self.transport.setTcpNoDelay(True)  # type: ignore[attr-defined]

        def dataReceived(self, data: bytes) -> None:
            buffer = self.buffer + data
            # One transport write per read, as stoxgw's MSRPConnection does:
            # the least work means not paying Twisted's per-write cost for
            # every response.
            responses: list[bytes] = []
            write = responses.append
            start = 0
            handled = 0
            while True:
                lineEnd = buffer.find(b"\r\n", start)
                if lineEnd < 0:
                    break
                # "MSRP " tid " " method
                space = buffer.find(b" ", start + 5, lineEnd)
                tid = buffer[start + 5 : space]
                scan = lineEnd
                end = -1
                while True:
                    found = buffer.find(b"\r\n-------", scan)
                    if found < 0:
                        break
                    tail = found + 9 + len(tid)
                    if (
                        buffer[found + 9 : tail] == tid
                        and buffer[tail + 1 : tail + 3] == b"\r\n"
                    ):
                        end = tail + 3
                        break
                    scan = found + 1
                if end < 0 or end > len(buffer):
                    break
                # To-Path and From-Path are the first two header lines.
                toEnd = buffer.find(b"\r\n", lineEnd + 2)
                fromEnd = buffer.find(b"\r\n", toEnd + 2)
                toPath = buffer[lineEnd + 11 : toEnd]
                fromPath = buffer[toEnd + 13 : fromEnd]
                write(
                    b"MSRP "
                    + tid
                    + b" 200 OK\r\nTo-Path: "
                    + fromPath
                    + b"\r\nFrom-Path: "
                    + toPath
                    + b"\r\n-------"
                    + tid
                    + b"$\r\n"
                )
                handled += 1
                start = end
            self.buffer = buffer[start:]
            if responses:
                self.transport.write(b"".join(responses))  # type: ignore[union-attr]
            counts["messages"] += handled

    factory = Factory.forProtocol(RawMSRP)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    number = port.getHost().port
    uris = [f"msrp://127.0.0.1:{number}/{_ident(20)};tcp" for _ in range(sessions)]
    pipe.send((number, uris))
    _serveUntilStopped(reactor, pipe, lambda: (counts["messages"], []))


def _serveUntilStopped(reactor: Any, pipe: Any, stats: Any) -> None:
    """
    Run the reactor until the parent says C{"stop"} (polled ten times a
    second), then send back C{stats()}.
    """
    from twisted.internet.task import LoopingCall

    def poll() -> None:
        if pipe.poll():
            pipe.recv()
            pipe.send(stats())
            reactor.stop()

    LoopingCall(poll).start(0.1)
    reactor.run()


# -- load generator --------------------------------------------------------


def _ident(length: int) -> str:
    """
    A random C{ident}-safe string.
    """
    return "".join(random.choice(_TID_ALPHABET) for _ in range(length))


def _requests(toURI: str, index: int, count: int) -> list[bytes]:
    """
    Pre-serialize single-chunk chat SENDs for one connection.

    @param toURI: The session URI (To-Path).
    @param index: The connection number (for the From-Path).
    @param count: How many distinct requests (tids and Message-IDs).
    @return: The wire bytes of each request.
    """
    from stoxgw.msrp.builders import buildRequest
    from stoxgw.msrp.uri import MSRPURI

    to = (MSRPURI.fromString(toURI),)
    frm = (MSRPURI("msrp", "127.0.0.1", 9, f"client{index}x{_ident(12)}", "tcp"),)
    result = []
    for _ in range(count):
        words = []
        while len(" ".join(words)) < random.randint(100, 200):
            words.append(random.choice(_WORDS))
        body = " ".join(words)[:200].encode("utf-8")
        request = buildRequest(
            "SEND",
            to,
            frm,
            [
                ("Message-ID", _ident(24)),
                ("Byte-Range", f"1-{len(body)}/{len(body)}"),
            ],
            body=body,
            contentType="text/plain",
            transactionID=_ident(16),
        )
        result.append(request.serialize())
    return result


def _cpuSeconds(pid: int) -> float | None:
    """
    CPU seconds (user + system) used by a process, from C{/proc} (Linux).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class _Client:
    """
    One load-generating connection: a ring of pre-serialized requests sent
    through a bounded window.
    """

    def __init__(self, sock: socket.socket, requests: list[bytes]) -> None:
        self.sock = sock
        self.size = len(requests)
        ring = requests + requests
        self.blob = b"".join(ring)
        self.offsets = [0]
        for request in ring:
            self.offsets.append(self.offsets[-1] + len(request))
        self.next = 0
        self.outstanding = 0
        self.tail = b""
        self.out = b""

    def take(self, count: int) -> bytes:
        """
        The wire bytes of the next C{count} requests.
        """
        start = self.next
        data = self.blob[self.offsets[start] : self.offsets[start + count]]
        self.next = (start + count) % self.size
        self.outstanding += count
        return data


def _runLoad(
    port: int,
    uris: list[str],
    window: int,
    warmup: float,
    duration: float,
    serverPID: int,
    pipe: Any,
) -> None:
    """
    Drive one server and send back the measurement.

    @param port: The server's port on 127.0.0.1.
    @param uris: One session URI per connection.
    @param window: Requests outstanding per connection.
    @param warmup: Seconds before counting starts.
    @param duration: Seconds counted.
    @param serverPID: The server process (for its CPU time).
    @param pipe: Where the result dict goes.
    """
    random.seed(4975)
    pool = max(2 * window, 64)
    clients = []
    selector = selectors.DefaultSelector()
    for index, uri in enumerate(uris):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        client = _Client(sock, _requests(uri, index, pool))
        clients.append(client)
        selector.register(sock, selectors.EVENT_READ, client)

    def send(client: _Client, data: bytes) -> None:
        data = client.out + data if client.out else data
        try:
            sent = client.sock.send(data)
        except BlockingIOError:
            sent = 0
        client.out = data[sent:]
        events = selectors.EVENT_READ
        if client.out:
            events |= selectors.EVENT_WRITE
        selector.modify(client.sock, events, client)

    for client in clients:
        send(client, client.take(window))

    ok = errors = 0
    started = time.monotonic()
    counting = started + warmup
    stop = counting + duration
    measuring = False
    cpuStart = clientStart = 0.0
    now = started
    while now < stop:
        if not measuring and now >= counting:
            measuring = True
            ok = errors = 0
            counting = now
            cpuStart = _cpuSeconds(serverPID) or 0.0
            clientStart = time.process_time()
        for key, mask in selector.select(0.5):
            client = key.data
            if mask & selectors.EVENT_WRITE:
                send(client, b"")
            if not mask & selectors.EVENT_READ:
                continue
            try:
                data = client.sock.recv(262144)
            except BlockingIOError:
                continue
            if not data:
                raise SystemExit("server closed a connection")
            data = client.tail + data if client.tail else data
            cut = data.rfind(b"\n") + 1
            complete = data[:cut]
            client.tail = data[cut:]
            answered = complete.count(b"MSRP ")
            if not answered:
                continue
            good = len(_OK_RE.findall(complete))
            ok += good
            errors += answered - good
            client.outstanding -= answered
            send(client, client.take(window - client.outstanding))
        now = time.monotonic()
    elapsed = now - counting
    cpuEnd = _cpuSeconds(serverPID)
    clientCPU = time.process_time() - clientStart
    for client in clients:
        client.sock.close()
    pipe.send(
        {
            "rate": ok / elapsed if elapsed > 0 else 0.0,
            "ok": ok,
            "errors": errors,
            "elapsed": elapsed,
            "serverCPU": None if cpuEnd is None else (cpuEnd - cpuStart) / elapsed,
            "clientCPU": clientCPU / elapsed,
        }
    )


# -- orchestration ---------------------------------------------------------

_SERVERS = {"stoxgw": _runStoxgwServer, "baseline": _runBaselineServer}


def measure(
    kind: str, connections: int, window: int, warmup: float, duration: float
) -> dict[str, Any]:
    """
    Start a server process and a load process, and measure.

    @param kind: C{"stoxgw"} or C{"baseline"}.
    @param connections: How many client connections.
    @param window: Requests outstanding per connection.
    @param warmup: Seconds not counted.
    @param duration: Seconds counted.
    @return: The load generator's result plus the server's message count
        and warnings.
    """
    context = multiprocessing.get_context("spawn")
    serverEnd, serverPipe = context.Pipe()
    server = context.Process(
        target=_SERVERS[kind], args=(connections, serverPipe), daemon=True
    )
    server.start()
    try:
        if not serverEnd.poll(30):
            raise RuntimeError(f"{kind} server did not start")
        port, uris = serverEnd.recv()
        loadEnd, loadPipe = context.Pipe()
        load = context.Process(
            target=_runLoad,
            args=(port, uris, window, warmup, duration, server.pid, loadPipe),
            daemon=True,
        )
        load.start()
        if not loadEnd.poll(warmup + duration + 60):
            raise RuntimeError(f"load generator against {kind} did not finish")
        result: dict[str, Any] = loadEnd.recv()
        load.join(10)
        serverEnd.send("stop")
        if serverEnd.poll(10):
            result["handled"], result["warnings"] = serverEnd.recv()
        server.join(10)
        return result
    finally:
        if server.is_alive():
            server.terminate()


def _versions() -> str:
    """
    The Python and Twisted versions of this machine.
    """
    import twisted

    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}),"
        f" Twisted {twisted.__version__}, {platform.system()} {platform.machine()},"
        f" {os.cpu_count()} CPUs"
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def main(argv: list[str] | None = None) -> int:
    """
    Run the cases and print the report.

    @return: The exit status: 0, or 1 with C{--strict} below target.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=5.0,
        help="seconds measured per server and case (default 5)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds of load before measuring (default 1)",
    )
    parser.add_argument(
        "--connections",
        default="1,100",
        help="comma-separated connection counts (default 1,100)",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=32,
        help="requests outstanding per connection (default 32)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help=f"exit with status 1 if a ratio is below {TARGET:.2f}",
    )
    options = parser.parse_args(argv)
    cases = [int(part) for part in options.connections.split(",") if part.strip()]

    print(_versions())
    print(
        "Servers run one at a time, each in its own process; the load generator"
        " is a separate process (plain sockets)."
    )
    print(
        f"Single-chunk text/plain SENDs of 100-200 octets, window {options.window}"
        f" per connection, {options.warmup:g} s warm-up + {options.duration:g} s"
        " measured per run."
    )
    passed = True
    broken = False
    ratios: list[str] = []
    for connections in cases:
        rates = {}
        for kind in ("stoxgw", "baseline"):
            result = measure(
                kind, connections, options.window, options.warmup, options.duration
            )
            rates[kind] = result["rate"]
            note = (
                f"  {kind}: {result['ok']} responses in {result['elapsed']:.2f} s,"
                f" server CPU {_percent(result['serverCPU'])},"
                f" load generator CPU {_percent(result['clientCPU'])}"
            )
            if result["errors"]:
                note += f", {result['errors']} non-200 responses"
                broken = True
            if result.get("warnings"):
                note += f", server warnings: {result['warnings']}"
                broken = True
            print(note)
        ratio = rates["stoxgw"] / rates["baseline"] if rates["baseline"] else 0.0
        passed = passed and ratio >= TARGET
        noun = "connection" if connections == 1 else "connections"
        ratios.append(f"{ratio:.2f} with {connections} {noun}")
        print(
            f"{connections} {noun}: stoxgw {rates['stoxgw']:.0f} msg/s,"
            f" baseline {rates['baseline']:.0f} msg/s, ratio {ratio:.2f}"
            f" (target >= {TARGET:.2f})",
            flush=True,
        )
    print(
        f"{'PASS' if passed else 'FAIL'}: ratio {', '.join(ratios)}"
        f" (target >= {TARGET:.2f})"
    )
    if broken:
        return 2
    if options.strict and not passed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
