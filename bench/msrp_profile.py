#!/usr/bin/env python3
# -*- test-case-name: tests.msrp -*-
"""
Single-process micro-benchmark of the MSRP receive path, for profiling.

Feeds batches of pre-serialized single-chunk SENDs (the ones
C{msrp_throughput.py} sends) into L{MSRPConnection}s made by a real
L{MSRPEndpoint} over C{StringTransport}s, with no sockets and no reactor
loop, and prints the cost per message; with C{--profile} it prints the
C{cProfile} statistics of the run instead.  It also runs the same bytes
through the baseline's framing loop (copied from C{msrp_throughput.py}) for
comparison.

Run from the top of the repository::

    python bench/msrp_profile.py [--messages 200000] [--batch 32]
        [--connections 100] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from typing import Any

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (TOP, os.path.join(TOP, "bench")):
    if path not in sys.path:
        sys.path.insert(0, path)


def _baselineFeeder() -> Any:
    """
    The baseline server's C{dataReceived}, over a transport that collects
    writes (same code as C{msrp_throughput._runBaselineServer}).
    """
    out: list[bytes] = []

    class Baseline:
        buffer = b""

        def dataReceived(self, data: bytes) -> None:
            buffer = self.buffer + data
            responses: list[bytes] = []
            write = responses.append
            start = 0
            while True:
                lineEnd = buffer.find(b"\r\n", start)
                if lineEnd < 0:
                    break
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
                start = end
            self.buffer = buffer[start:]
            if responses:
                out.append(b"".join(responses))
            if len(out) > 4096:
                out.clear()

    return Baseline()


def main(argv: list[str] | None = None) -> int:
    """
    Run the micro-benchmark.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime")
    options = parser.parse_args(argv)

    import random

    from twisted.internet.address import IPv4Address
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport
    from zope.interface import implementer

    from msrp_throughput import _requests
    from stoxgw.msrp.endpoint import MSRPEndpoint
    from stoxgw.msrp.session import IMSRPSessionHandler

    random.seed(4975)

    counts = {"messages": 0}

    @implementer(IMSRPSessionHandler)
    class AcceptingHandler:
        def sessionBound(self) -> None:
            pass

        def messageReceived(self, message: Any) -> None:
            counts["messages"] += 1

        def nicknameRequested(self, nickname: str) -> int:
            return 200

        def sessionFailed(self, reason: Any) -> None:
            pass

    class Clock2(Clock):
        """A clock that is also a (never listening) reactor."""

    endpoint = MSRPEndpoint(Clock2(), "127.0.0.1", 2855, transactionTimeout=30)
    feeds = []
    for index in range(options.connections):
        session = endpoint.createSession(AcceptingHandler())
        requests = _requests(str(session.localURI), index, 2 * options.batch)
        connection = endpoint._buildConnection()
        transport = StringTransport(
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40000 + index)
        )
        connection.makeConnection(transport)
        batches = [
            b"".join(requests[i : i + options.batch])
            for i in range(0, len(requests), options.batch)
        ]
        feeds.append((connection, transport, batches, requests))

    rounds = max(1, options.messages // (options.batch * options.connections))

    def run() -> int:
        handled = 0
        for r in range(rounds):
            for connection, transport, batches, _ in feeds:
                connection.dataReceived(batches[r % len(batches)])
                transport.clear()
                handled += options.batch
        return handled

    # Warm up the caches.
    for connection, transport, batches, _ in feeds:
        for batch in batches:
            connection.dataReceived(batch)
        transport.clear()
    counts["messages"] = 0
    if options.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        handled = run()
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats(options.sort).print_stats(30)
        return 0
    # The best of three runs: the machine may be shared.
    best = float("inf")
    for _ in range(3):
        counts["messages"] = 0
        started = time.perf_counter()
        handled = run()
        best = min(best, time.perf_counter() - started)
        assert counts["messages"] == handled, (counts, handled)
    print(f"stoxgw:   {best / handled * 1e6:6.2f} us/message ({handled} messages)")

    baselines = [(_baselineFeeder(), batches) for _, _, batches, _ in feeds]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for r in range(rounds):
            for baseline, batches in baselines:
                baseline.dataReceived(batches[r % len(batches)])
        best = min(best, time.perf_counter() - started)
    print(f"baseline: {best / handled * 1e6:6.2f} us/message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
