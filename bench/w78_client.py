"""
W7's and W8's load generator (bench/README.md), in a process of its own:
SIP users (the project's UA, MSRP endpoint and L{ChatInitiator}) entering
rooms of a real Prosody through the gateway of C{bench/gatewayd.py}, whose
statistics port it reads.

  python bench/w78_client.py w7 --sip-port P --stats-port S --sessions N
  python bench/w78_client.py w8 --sip-port P --stats-port S --rate R --duration D

W7: the gateway's figures idle, then with N idle bridged sessions (10
rooms by default), then after all ended.  W8 (rooms: 100 by default, so
that no room gets more than 60 INVITEs a minute, under [gateway]
invites_per_room): a warm-up churn, the figures, R set-ups
per second for D seconds, each session ended about 1 s after it was set
up, then the rest ended, and the figures again.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from typing import Any

import stoxgw.xmpp  # noqa: F401

from twisted.internet import defer, reactor

from stoxgw.chat.session import ChatInitiator
from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.sip.transport import SIPTransport
from stoxgw.sip.uri import SIPURI, parseNameAddr
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings

from common import runClient


class Handler:
    """
    Accepts nothing in particular; closes the session's own MSRP endpoint
    once the session ended.
    """

    def __init__(self, endpoint: MSRPEndpoint) -> None:
        self.endpoint = endpoint

    def chatStarted(self, session: Any) -> None:
        pass

    def messageReceived(self, session: Any, message: Any) -> Any:
        return None

    def nicknameRequested(self, session: Any, nickname: str) -> Any:
        return 403

    def chatEnded(self, session: Any, reason: Any) -> None:
        reactor.callLater(0.5, self.endpoint.stopListening)  # type: ignore[attr-defined]


def readStats(port: int, command: bytes = b"stats") -> dict[str, Any]:
    """
    The gateway's figures (blocking: the gateway is another process).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(command)
        data = b""
        for _ in range(100):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)  # type: ignore[no-any-return]


def sleep(seconds: float) -> defer.Deferred[None]:
    d: defer.Deferred[None] = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)  # type: ignore[attr-defined]
    return d


class Users:
    def __init__(self, sipPort: int, statsPort: int, rooms: int = 10) -> None:
        self.statsPort = statsPort
        self.rooms = rooms
        transport = SIPTransport(reactor, "127.0.0.1")  # type: ignore[arg-type]
        transport.listenTCP(0)
        proxy = SIPURI("sip", "127.0.0.1", port=sipPort, parameters=(("transport", "tcp"), ("lr", None)))
        ua = SIPUserAgent(
            reactor,  # type: ignore[arg-type]
            transport,
            settings=UserAgentSettings(outboundProxy=proxy),
            admission=SIPTrust.fromStrings(["127.0.0.1"]),
        )
        self.ua = ua
        self.failed = 0
        self.serial = 0

    def enter(self) -> defer.Deferred[Any]:
        self.serial += 1
        i = self.serial
        room = SIPURI.fromString(f"sip:room{i % self.rooms}@muc.xmpp.test")
        # One MSRP endpoint per session: one MSRP connection per session
        # at the gateway, as with independent SIP users.
        endpoint = MSRPEndpoint(reactor, "127.0.0.1", 0, transactionTimeout=30)  # type: ignore[arg-type]
        endpoint.startListening()
        d = ChatInitiator(self.ua, endpoint, reactor).startChat(  # type: ignore[arg-type]
            room,
            parseNameAddr(f'"U{i}" <sip:u{i}@example.org>;tag=t{i}'),
            Handler(endpoint),
            acceptTypes=("message/cpim",),
            acceptWrappedTypes=("text/plain",),
            chatroom=("nickname", "private-messages"),
        )
        d.addTimeout(30, reactor)  # type: ignore[arg-type]

        def failed(f: Any) -> None:
            self.failed += 1
            if self.failed <= 3:
                print(f"set-up failed: {f.getErrorMessage()} {getattr(f.value, 'status', '')}", file=sys.stderr)
            endpoint.stopListening()
            return None

        d.addErrback(failed)
        return d

    @defer.inlineCallbacks
    def enterMany(self, count: int, window: int = 20) -> Any:
        sessions: list[Any] = []
        pending: set[defer.Deferred[Any]] = set()
        for _ in range(count):
            while len(pending) >= window:
                yield defer.DeferredList(list(pending), fireOnOneCallback=True, consumeErrors=True)
                pending = {d for d in pending if not d.called}
            d = self.enter()
            d.addCallback(lambda s: s is not None and sessions.append(s))
            pending.add(d)
        if pending:
            yield defer.DeferredList(list(pending), consumeErrors=True)
        return sessions

    @defer.inlineCallbacks
    def settle(
        self, participants: int, timeout: float = 90, until: Any = None
    ) -> Any:
        """
        Wait (bounded) until the gateway has C{participants} SIP users and
        its open fds and pending DelayedCalls (protocol timers of ended
        sessions) have not changed for 3 readings 1 s apart, and, with
        C{until} (figures), are back to its fds and DelayedCalls: an MSRP
        connection of a set-up the client gave up on stays up to
        C{[msrp] unbound_timeout} (30 s) with its timer, by design.
        """
        deadline = time.monotonic() + timeout
        stats = readStats(self.statsPort)
        while time.monotonic() < deadline and stats["participants"] != participants:
            yield sleep(0.2)
            stats = readStats(self.statsPort)
        same = 0
        target = None if until is None else (until["fds"], until["delayed_calls"])
        while time.monotonic() < deadline and (
            same < 3 or (target is not None and (stats["fds"], stats["delayed_calls"]) != target)
        ):
            yield sleep(1.0)
            now = readStats(self.statsPort)
            if (now["fds"], now["delayed_calls"]) == (stats["fds"], stats["delayed_calls"]):
                same += 1
            else:
                same = 0
            stats = now
        return stats


@defer.inlineCallbacks
def w7(options: argparse.Namespace) -> Any:
    users = Users(options.sip_port, options.stats_port, options.rooms)
    yield users.settle(0)
    # mark/diff: with the gateway's diagnostics on (bench/gatewayd.py), the
    # loaded figures say what the sessions hold by allocation site and type.
    idle = readStats(options.stats_port, b"mark")
    started = time.monotonic()
    sessions = yield users.enterMany(options.sessions)
    setup = time.monotonic() - started
    yield users.settle(len(sessions))
    loaded = readStats(options.stats_port, b"diff")
    for session in sessions:
        session.end()
    after = yield users.settle(0)
    return {
        "idle": idle, "loaded": loaded, "after": after, "sessions": len(sessions),
        "failed": users.failed, "setup_s": setup,
    }


@defer.inlineCallbacks
def w8(options: argparse.Namespace) -> Any:
    users = Users(options.sip_port, options.stats_port, options.rooms)
    # Warm-up churn: first-use allocations (rooms, caches) are not leaks.
    warm = yield users.enterMany(options.rate)
    for session in warm:
        session.end()
    baseline = yield users.settle(0)
    baseline = readStats(options.stats_port, b"mark")
    afters: list[dict[str, Any]] = []
    setUp, elapsed = 0, 0.0
    for _ in range(options.churns):
        attempted, seconds = yield churn(users, options.rate, options.duration)
        setUp, elapsed = setUp + attempted, elapsed + seconds
        yield users.settle(0, until=baseline)
        afters.append(readStats(options.stats_port, b"diff"))
    return {
        "baseline": baseline, "after": afters[0], "afters": afters, "attempted": setUp,
        "failed": users.failed, "elapsed_s": elapsed,
    }


@defer.inlineCallbacks
def churn(users: Users, rate: int, duration: float) -> Any:
    """
    C{rate} set-ups per second for C{duration} seconds, each session ended
    about 1 s after it was set up, then the rest ended.

    @return: how many set-ups were attempted, and in how many seconds.
    """
    live: list[tuple[float, Any]] = []
    pending: list[defer.Deferred[Any]] = []
    setUp = 0
    started = time.monotonic()
    ticks = int(duration * 10)
    for tick in range(ticks):
        due = started + tick / 10.0
        now = time.monotonic()
        if due > now:
            yield sleep(due - now)
        for _ in range(max(1, rate // 10)):
            d = users.enter()
            d.addCallback(lambda s: s is not None and live.append((time.monotonic(), s)))
            pending.append(d)
            setUp += 1
        now = time.monotonic()
        while live and now - live[0][0] > 1.0:
            live.pop(0)[1].end()
    elapsed = time.monotonic() - started
    # Every set-up still in progress ends too, once it is done (each has
    # its 30 s timeout): on a loaded machine set-ups take seconds, and a
    # session set up after the last end() would stay (the gateway rightly
    # keeps it), which read as a leak.
    yield defer.DeferredList(pending, consumeErrors=True)
    yield sleep(1.0)
    for _, session in live:
        session.end()
    return setUp, elapsed


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("w7", "w8"))
    parser.add_argument("--sip-port", type=int, required=True)
    parser.add_argument("--stats-port", type=int, required=True)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--churns", type=int, default=1)
    options = parser.parse_args()
    work = w7 if options.mode == "w7" else w8
    runClient(lambda: work(options), limit=900)
    sys.stderr.flush()

if __name__ == "__main__":
    run()
