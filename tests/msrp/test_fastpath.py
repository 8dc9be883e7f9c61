# -*- test-case-name: tests.msrp.test_fastpath -*-
"""
Differential tests for the receive fast path of L{MSRPConnection}: the same
random byte streams, cut at the same random places, go through a connection
with the fast path and one without (everything through L{MSRPParser} and the
usual dispatch), and everything observable must be the same: the bytes
written after each read, the messages handed to the handlers, the sessions'
state and the log events.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from stoxgw.msrp import builders as buildersModule
from stoxgw.msrp import fastpath as fastpathModule
from stoxgw.msrp import message as messageModule
from stoxgw.msrp.protocol import MSRPConnection
from stoxgw.msrp.session import IMSRPSessionHandler, IncomingMessage, MSRPSession
from stoxgw.msrp.uri import MSRPURI

SESSION_A = MSRPURI.fromString("msrp://10.0.0.1:2855/sessionaaaa;tcp")
SESSION_C = MSRPURI.fromString("msrp://10.0.0.1:2855/sessioncccc;tcp")
SESSION_B = MSRPURI.fromString("msrp://10.0.0.1:2855/sessionbbbb;tcp")
UNKNOWN = MSRPURI.fromString("msrp://10.0.0.1:2855/nosuchsession;tcp")
REMOTE = MSRPURI.fromString("msrp://192.168.1.1:7777/remotesession;tcp")
REMOTE2 = MSRPURI.fromString("msrp://192.168.1.2:7777/otherremote;tcp")
RELAY = MSRPURI.fromString("msrps://relay.example.com:2855/hop;tcp")

MAX_HEADER = 1024
MAX_CHUNK = 2000
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@implementer(IMSRPSessionHandler)
class ScriptedHandler:
    """
    Records every message and answers as a marker in its body says.
    """

    def __init__(self, name: str, world: World) -> None:
        self.name = name
        self.world = world
        self.session: MSRPSession | None = None

    def sessionBound(self) -> None:
        self.world.calls.append((self.name, "bound"))

    def messageReceived(self, message: IncomingMessage) -> Any:
        self.world.calls.append((self.name, message))
        body = message.body
        if b"!403" in body:
            return 403
        if b"!200" in body:
            return 200
        if b"!raise" in body:
            raise ValueError("handler failed")
        if b"!now" in body:
            return succeed(None)
        if b"!later" in body:
            d: Deferred[int] = Deferred()
            self.world.later.append(d)
            return d
        if b"!close" in body and self.session is not None:
            self.session.close()
        if b"!send" in body and self.session is not None:
            self.world.sent += 1
            d = self.session.sendMessage(
                "text/plain", b"reply", messageID=f"reply{self.world.sent:04d}"
            )
            d.addBoth(lambda result: self.world.calls.append((self.name, "sent", str(result))))
        return None

    def nicknameRequested(self, nickname: str) -> Any:
        self.world.calls.append((self.name, "nickname", nickname))
        return 200

    def sessionFailed(self, reason: Failure) -> None:
        self.world.calls.append((self.name, "failed", reason.getErrorMessage()))


class World:
    """
    One connection with its sessions, registry and recordings.
    """

    def __init__(self, fast: bool, pausing: bool, prebind: bool = False) -> None:
        self.calls: list[Any] = []
        self.later: list[Deferred[int]] = []
        self.sent = 0
        self.clock = Clock()
        self.sessions: dict[MSRPURI, MSRPSession] = {}
        handlers = []
        for uri, name, options in [
            (SESSION_A, "A", {}),
            (SESSION_C, "C", {"acceptTypes": ("text/plain",), "maxMessageSize": 250}),
            (SESSION_B, "B", {}),
        ]:
            handler = ScriptedHandler(name, self)
            session = MSRPSession(
                uri,
                handler,
                self.clock,
                onEnd=self._ended,
                maxIncomingMessages=3,
                **options,  # type: ignore[arg-type]
            )
            handler.session = session
            handlers.append(handler)
            self.sessions[uri] = session
        # Session B is bound to another connection (506).
        other = MSRPConnection(registry=self)
        other.makeConnection(StringTransport())
        self.sessions[SESSION_B].bind(other, False)
        self.transport = StringTransport()
        self.pausing = pausing
        self.connection = MSRPConnection(
            registry=self, maxHeaderBytes=MAX_HEADER, maxChunkBytes=MAX_CHUNK, fastPath=fast
        )
        self.connection.makeConnection(self.transport)
        if prebind:
            # Bound before any request came (no remote path known yet).
            self.sessions[SESSION_A].bind(self.connection, False)
        self.transport.clear()

    def _ended(self, session: MSRPSession) -> None:
        self.sessions.pop(session.localURI, None)

    # IMSRPSessionRegistry

    def sessionFor(self, uri: MSRPURI) -> MSRPSession | None:
        return self.sessions.get(uri)

    def connectionOpened(self, connection: MSRPConnection) -> None:
        pass

    def connectionClosed(self, connection: MSRPConnection) -> None:
        pass

    def feed(self, data: bytes) -> None:
        """
        Feed bytes; with C{pausing}, the transport pauses the connection
        now and then (so that responses go through the queue) and resumes it
        after the read.
        """
        if self.pausing and len(data) % 3 == 0:
            self.connection.pauseProducing()
        self.connection.dataReceived(data)
        if self.connection._paused:
            self.connection.resumeProducing()

    def spyOnParser(self) -> list[bytes]:
        """
        Record what the connection feeds its parser (the bytes that do not
        take the fast path).

        @return: The list the bytes are appended to.
        """
        fed: list[bytes] = []
        feed = self.connection._parser.feed

        def spy(data: bytes) -> Any:
            fed.append(data)
            return feed(data)

        self.connection._parser.feed = spy  # type: ignore[method-assign]
        return fed

    def state(self) -> Any:
        """
        What the sessions hold.
        """
        return [
            (
                str(uri),
                session.state,
                session.remotePath,
                sorted(session._incoming),
                list(session._rejected),
                session.pendingSends,
            )
            for uri, session in sorted(self.sessions.items(), key=lambda i: str(i[0]))
        ]


def _ident(rng: random.Random, low: int = 8, high: int = 16) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(low, high)))


def _body(rng: random.Random, size: int) -> bytes:
    words = [
        b"hello",
        b"there",
        b"\r\n",
        b"-------",
        b"\r\n-------abcd$\r\n",
        "\u00e9t\u00e9".encode(),
        b" ",
        b"$",
    ]
    markers = [b"!403", b"!200", b"!raise", b"!now", b"!later", b"!send", b"!close"]
    parts: list[bytes] = []
    if rng.random() < 0.25:
        parts.append(rng.choice(markers))
    while sum(map(len, parts)) < size:
        parts.append(rng.choice(words))
    return b"".join(parts)[:size]


def _request(
    tid: str,
    method: str,
    lines: list[str],
    body: bytes | None,
    flag: str = "$",
) -> bytes:
    head = f"MSRP {tid} {method}\r\n" + "".join(line + "\r\n" for line in lines)
    data = head.encode("utf-8")
    if body is not None:
        data += b"\r\n" + body + b"\r\n"
    return data + f"-------{tid}{flag}\r\n".encode("ascii")


def _paths(rng: random.Random) -> list[str]:
    """
    To-Path and From-Path lines, mostly to session A.
    """
    roll = rng.random()
    if roll < 0.6:
        to = str(SESSION_A)
    elif roll < 0.8:
        to = str(SESSION_C)
    elif roll < 0.87:
        to = str(UNKNOWN)
    elif roll < 0.93:
        to = str(SESSION_B)
    elif roll < 0.95:
        to = f"{RELAY} {SESSION_A}"
    elif roll < 0.96:
        to = f"{SESSION_A} {RELAY}"
    else:
        to = "msrp://bad uri"
    sender = str(REMOTE if rng.random() < 0.85 else REMOTE2)
    return [f"To-Path: {to}", f"From-Path: {sender}"]


def _simpleSend(rng: random.Random) -> bytes:
    """
    A single-chunk SEND, usually in the common layout, with random
    variations of every field the fast path looks at.
    """
    tid = _ident(rng)
    size = rng.choice([0, 5, 40, 120, 200, 260, 2100]) if rng.random() < 0.3 else rng.randint(1, 180)
    body = _body(rng, size)
    if rng.random() < 0.05:
        # Almost this transaction's end-line.
        body += f"\r\n-------{tid}x\r\n-------{tid}".encode()
        size = len(body)
    lines = _paths(rng)
    mid = (
        _ident(rng)
        if rng.random() < 0.8
        else rng.choice(["msg0001", "msg0002", "msg0001", "bad id!", "ab"])
    )
    roll = rng.random()
    if roll < 0.9:
        lines.append(f"Message-ID: {mid}")
    elif roll < 0.94:
        lines.append(f"message-id: {mid}")
    elif roll < 0.97:
        lines.append(f"Message-ID:  {mid}")
    rangeRoll = rng.random()
    if rangeRoll < 0.7:
        lines.append(f"Byte-Range: 1-{size}/{size}")
    elif rangeRoll < 0.75:
        lines.append(f"Byte-Range: 1-*/{size}")
    elif rangeRoll < 0.8:
        lines.append(f"Byte-Range: 1-{size}/*")
    elif rangeRoll < 0.85:
        lines.append(f"Byte-Range: 1-{size}/{max(0, size - 3)}")
    elif rangeRoll < 0.88:
        lines.append("Byte-Range: 5-9/20")
    elif rangeRoll < 0.9:
        lines.append("Byte-Range: x-y/z")
    for name, values in [
        ("Failure-Report", ["yes", "no", "partial", "maybe"]),
        ("Success-Report", ["yes", "no", "perhaps"]),
    ]:
        if rng.random() < 0.25:
            lines.append(f"{name}: {rng.choice(values)}")
    if rng.random() < 0.05:
        lines.append("X-Extension: something")
    if rng.random() < 0.02:
        lines.append(rng.choice([f"Message-ID: {_ident(rng)}", f"To-Path: {SESSION_C}"]))
    if rng.random() < 0.02:
        lines.append("Bad header line")
    if rng.random() < 0.02:
        lines.append("X-Pad: " + "p" * MAX_HEADER)
    if rng.random() < 0.03:
        lines.append("Byte-Range: 1-1/1")
    if rng.random() < 0.03:
        lines.insert(2, "X-First: before the Message-ID")
    typeRoll = rng.random()
    if typeRoll < 0.8:
        lines.append("Content-Type: text/plain")
    elif typeRoll < 0.9:
        lines.append("Content-Type: image/png")
    elif typeRoll < 0.95:
        lines.append("content-type: message/cpim")
    return _request(tid, "SEND", lines, body)


def _chunked(rng: random.Random) -> list[bytes]:
    """
    The chunks of one message (some aborted).
    """
    paths = _paths(rng)
    mid = _ident(rng)
    body = _body(rng, rng.randint(2, 300))
    cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randint(1, 2))))
    pieces = []
    start = 0
    for end in [*cuts, len(body)]:
        pieces.append((start, body[start:end]))
        start = end
    if rng.random() < 0.3:
        pieces.reverse()
    chunks = []
    for index, (offset, piece) in enumerate(pieces):
        last = index == len(pieces) - 1
        flag = "$" if last else "+"
        if last and rng.random() < 0.1:
            flag = "#"
        lines = [
            *paths,
            f"Message-ID: {mid}",
            f"Byte-Range: {offset + 1}-{offset + len(piece)}/{len(body)}",
            "Content-Type: text/plain",
        ]
        chunks.append(_request(_ident(rng), "SEND", lines, piece, flag))
    return chunks


def _other(rng: random.Random) -> bytes:
    """
    Anything else a peer sends.
    """
    tid = _ident(rng)
    kind = rng.randrange(8)
    paths = _paths(rng)
    if kind == 0:
        return _request(tid, "SEND", [*paths, f"Message-ID: {_ident(rng)}", "Byte-Range: 1-0/0"], None)
    if kind == 1:
        return _request(
            tid,
            "REPORT",
            [*paths, f"Message-ID: {_ident(rng)}", "Byte-Range: 1-5/5", "Status: 000 200 OK"],
            None,
        )
    if kind == 2:
        return _request(tid, "NICKNAME", [*paths, 'Use-Nickname: "bob"'], None)
    if kind == 3:
        return _request(tid, "FOO", [*paths], None)
    if kind == 4:
        return f"MSRP {tid} 200 OK\r\n{paths[0]}\r\n{paths[1]}\r\n-------{tid}$\r\n".encode()
    if kind == 5:
        return _request(tid, "SEND", [paths[1], paths[0], f"Message-ID: {_ident(rng)}"], b"swapped")
    if kind == 6:
        return _request(tid, "SEND", [*paths, "Message-ID: m1234567", "Failure-Report: no", "Bad"], b"x")
    return _request(tid, "SEND", [*paths, "Message-ID: m1234567", "Byte-Range: 1-3/3"], b"abc", "+")


def stream(rng: random.Random, count: int) -> bytes:
    """
    A random mix of messages.
    """
    parts: list[bytes] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.7:
            parts.append(_simpleSend(rng))
        elif roll < 0.85:
            parts.extend(_chunked(rng))
        else:
            parts.append(_other(rng))
    if rng.random() < 0.05:
        parts.append(b"GARBAGE\r\n")
        parts.append(_simpleSend(rng))
    return b"".join(parts)


def cuts(rng: random.Random, data: bytes) -> list[bytes]:
    """
    Cut a stream at random places (sometimes byte by byte, sometimes not at
    all).
    """
    style = rng.random()
    if style < 0.15:
        return [data]
    if style < 0.2:
        return [data[i : i + 1] for i in range(len(data))]
    pieces = []
    position = 0
    while position < len(data):
        size = rng.choice([1, 2, 7, 50, 200, 700, 3000])
        size = rng.randint(1, size)
        pieces.append(data[position : position + size])
        position += size
    return pieces


class LogRecorder:
    """
    Collects the log events of the MSRP stack in one run, and the failures
    they logged.
    """

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.failures: list[Any] = []

    def __call__(self, event: dict[str, Any]) -> None:
        if not str(event.get("log_namespace", "")).startswith("stoxgw.msrp"):
            return
        failure = event.get("log_failure")
        if failure is not None:
            self.failures.append(failure)
        self.events.append(
            (
                event.get("log_namespace"),
                event.get("log_level"),
                event.get("log_format"),
                event.get("transactionID"),
                event.get("msrpSessionID"),
                None if failure is None else failure.type,
            )
        )


def runWorld(
    fast: bool, pausing: bool, prebind: bool, pieces: list[bytes]
) -> tuple[World, list[tuple[bytes, int]], LogRecorder]:
    """
    Feed the pieces to a new L{World}, then answer the handler's deferred
    results with 200 (the caller fixes the transaction ids first, for runs
    to compare).

    @return: The world; what was written and how many handler calls were
        made after each piece and at the end; the log events.
    """
    world = World(fast, pausing, prebind)
    recorder = LogRecorder()
    globalLogPublisher.addObserver(recorder)
    steps = []
    try:
        for piece in pieces:
            world.feed(piece)
            steps.append((world.transport.value(), len(world.calls)))
        for d in world.later:
            d.callback(200)
        steps.append((world.transport.value(), len(world.calls)))
    finally:
        globalLogPublisher.removeObserver(recorder)
    return world, steps, recorder


class _Differential(SynchronousTestCase):
    """
    Runs the same pieces with and without the fast path.
    """

    def setUp(self) -> None:
        counter = iter(range(10**9))
        self.patch(
            buildersModule, "generateTransactionID", lambda: f"tx{next(counter):08d}"
        )

    def run_(
        self, fast: bool, pausing: bool, prebind: bool, pieces: list[bytes]
    ) -> tuple[Any, ...]:
        """
        Feed the pieces to a new world and record everything.
        """
        counter = iter(range(10**9))
        self.patch(
            buildersModule, "generateTransactionID", lambda: f"tx{next(counter):08d}"
        )
        world, steps, recorder = runWorld(fast, pausing, prebind, pieces)
        failures = self.flushLoggedErrors(ValueError)
        return (
            steps,
            world.calls,
            world.state(),
            recorder.events,
            len(failures),
            world.connection._parser.failed,
            world.transport.disconnecting,
        )

    def compare(self, seed: int, count: int = 40) -> None:
        rng = random.Random(seed)
        data = stream(rng, count)
        pieces = cuts(rng, data)
        pausing = rng.random() < 0.3
        prebind = rng.random() < 0.5
        slow = self.run_(False, pausing, prebind, pieces)
        fast = self.run_(True, pausing, prebind, pieces)
        for index, (a, b) in enumerate(zip(slow, fast)):
            self.assertEqual(a, b, f"seed {seed}, item {index}")


class FastPathDifferentialTests(_Differential):
    """
    The fast path changes nothing observable.
    """

    def test_randomStreams(self) -> None:
        """
        Random mixes of common SENDs, chunked messages, reports, bad
        requests, unknown sessions, C{Failure-Report: no} and handler
        results, cut at random places, give the same output, handler calls,
        session state and logs with and without the fast path.
        """
        for seed in range(300):
            self.compare(seed)

    def test_scenarios(self) -> None:
        """
        Hand-made sequences around the session's own checks give the same
        results with and without the fast path: a Message-ID refused as too
        large before, one being reassembled, too many messages in
        reassembly, a session closed by its handler, handler results.
        """

        def send(to: MSRPURI, mid: str, body: bytes, flag: str = "$", start: int = 1, total: int | None = None) -> bytes:
            size = len(body) if total is None else total
            return _request(
                f"t{mid}{start}{flag == '$'}",
                "SEND",
                [
                    f"To-Path: {to}",
                    f"From-Path: {REMOTE}",
                    f"Message-ID: {mid}",
                    f"Byte-Range: {start}-{start + len(body) - 1}/{size}",
                    "Content-Type: text/plain",
                ],
                body,
                flag,
            )

        big = b"x" * 300
        scenarios = [
            # Rejected as too large (413), then the same Message-ID again.
            [send(SESSION_C, "rej00001", big), send(SESSION_C, "rej00001", b"small")],
            # A chunk being reassembled, then a whole one with its id.
            [
                send(SESSION_A, "part0001", b"abc", "+", total=6),
                send(SESSION_A, "part0001", b"abcdef"),
                send(SESSION_A, "part0001", b"def", start=4, total=6),
            ],
            # Too many messages in reassembly (the limit is 3).
            [send(SESSION_A, f"many{i:04d}", b"ab", "+", total=4) for i in range(3)]
            + [send(SESSION_A, "many9999", b"whole")],
            # The handler closes the session; then more for it.
            [send(SESSION_A, "close001", b"!close"), send(SESSION_A, "after001", b"hi")],
            # Handler results.
            [
                send(SESSION_A, f"res{i:05d}", marker)
                for i, marker in enumerate([b"!403", b"!200", b"!raise", b"!now", b"!later", b"!send"])
            ],
        ]
        for scenario in scenarios:
            for together in (True, False):
                pieces = [b"".join(scenario)] if together else scenario
                for prebind in (True, False):
                    slow = self.run_(False, False, prebind, pieces)
                    fast = self.run_(True, False, prebind, pieces)
                    self.assertEqual(slow, fast)
        rejected = self.run_(True, False, True, [b"".join(scenarios[0])])
        self.assertEqual(rejected[0][-1][0].count(b" 413 "), 2)

    def test_commonCaseIsFast(self) -> None:
        """
        The common SENDs do take the fast path: the parser sees only the
        first one (which binds the session).
        """
        world = World(True, False)
        fed = world.spyOnParser()
        rng = random.Random(1)
        messages = []
        for index in range(20):
            body = f"message {index}".encode()
            messages.append(
                _request(
                    _ident(rng),
                    "SEND",
                    [
                        f"To-Path: {SESSION_A}",
                        f"From-Path: {REMOTE}",
                        f"Message-ID: {_ident(rng)}",
                        f"Byte-Range: 1-{len(body)}/{len(body)}",
                        "Content-Type: text/plain",
                    ],
                    body,
                )
            )
        data = b"".join(messages)
        world.feed(data[:100])
        world.feed(data[100:])
        self.assertEqual(fed, [messages[0]])
        self.assertEqual(
            len([call for call in world.calls if isinstance(call[1], IncomingMessage)]), 20
        )
        self.assertEqual(world.transport.value().count(b" 200 OK\r\n"), 20)

    def test_heldTail(self) -> None:
        """
        An incomplete message is held between reads and then taken; a
        bodiless SEND whose end-line arrives later is still answered at once
        when it is complete.
        """
        world = World(True, False)
        body = b"hello"
        first = _request(
            "tid00001",
            "SEND",
            [
                f"To-Path: {SESSION_A}",
                f"From-Path: {REMOTE}",
                "Message-ID: m0000001",
                "Byte-Range: 1-5/5",
                "Content-Type: text/plain",
            ],
            body,
        )
        bodiless = _request(
            "tid00002",
            "SEND",
            [f"To-Path: {SESSION_A}", f"From-Path: {REMOTE}", "Message-ID: m0000002"],
            None,
        )
        for index in range(len(first)):
            world.feed(first[index : index + 1])
        self.assertEqual(world.transport.value().count(b"MSRP tid00001 200 OK"), 1)
        world.feed(bodiless[:-3])
        self.assertNotIn(b"tid00002", world.transport.value())
        world.feed(bodiless[-3:])
        self.assertIn(b"MSRP tid00002 200 OK", world.transport.value())

    def test_parseErrorsStillReported(self) -> None:
        """
        A malformed request is answered by the parser's rules, also between
        fast-path ones.
        """
        world = World(True, False)
        good = _simpleSend(random.Random(3))
        bad = _request("tidbad01", "SEND", [f"To-Path: {SESSION_A}", f"From-Path: {REMOTE}", "Bad"], b"x")
        world.feed(good + bad + good)
        self.assertIn(b"MSRP tidbad01 400", world.transport.value())
        self.assertTrue(world.connection._parser.idle)


def _common(to: MSRPURI, sender: MSRPURI, tid: str, mid: str, body: bytes) -> bytes:
    """
    A SEND in the layout the fast path takes.
    """
    return _request(
        tid,
        "SEND",
        [
            f"To-Path: {to}",
            f"From-Path: {sender}",
            f"Message-ID: {mid}",
            f"Byte-Range: 1-{len(body)}/{len(body)}",
            "Content-Type: text/plain",
        ],
        body,
    )


class FastPathRouteTests(_Differential):
    """
    The connection tries the route of the last fast-path SEND first: SENDs
    that alternate between sessions and senders (with To-Path and From-Path
    lines of the same length or not), and sessions that change in between,
    are still delivered where the parser would deliver them.
    """

    def test_alternatingRoutes(self) -> None:
        """
        SENDs alternating between sessions A and C (To-Path lines of the
        same length) and between two senders (From-Path lines of different
        lengths) take the fast path once the sessions are bound, and give
        what the parser gives.
        """
        # The lines of A and C are as long as each other; those of REMOTE
        # and REMOTE2 are not.
        self.assertEqual(len(str(SESSION_A)), len(str(SESSION_C)))
        self.assertNotEqual(len(str(REMOTE)), len(str(REMOTE2)))
        rng = random.Random(11)
        targets = [SESSION_A, SESSION_C, SESSION_C, SESSION_A, UNKNOWN, SESSION_A]
        senders = [REMOTE, REMOTE, REMOTE2, REMOTE2, REMOTE]
        messages = [
            _common(
                targets[index % len(targets)],
                senders[index % len(senders)],
                _ident(rng),
                _ident(rng),
                f"message {index}".encode(),
            )
            for index in range(60)
        ]
        data = b"".join(messages)
        for pieces in ([data], messages, cuts(rng, data)):
            for prebind in (True, False):
                slow = self.run_(False, False, prebind, pieces)
                fast = self.run_(True, False, prebind, pieces)
                self.assertEqual(slow, fast)
                names = [call[0] for call in fast[1] if isinstance(call[1], IncomingMessage)]
                self.assertEqual(names.count("A"), 30)
                self.assertEqual(names.count("C"), 20)

        world = World(True, False)
        fed = world.spyOnParser()
        world.feed(data)
        # The parser sees the SENDs that bind A and C and those to the
        # unknown session (481) only.
        self.assertEqual(len(fed), 2 + 10)

    def test_sessionChangesBetween(self) -> None:
        """
        A session closed by its handler in the middle of a read is not
        delivered to any more (the route tried first is forgotten), and a
        session bound in the middle of a read is found.
        """
        rng = random.Random(12)
        messages = [
            _common(SESSION_A, REMOTE, _ident(rng), _ident(rng), b"one"),
            _common(SESSION_A, REMOTE, _ident(rng), _ident(rng), b"two !close"),
            _common(SESSION_A, REMOTE, _ident(rng), _ident(rng), b"three"),
            _common(SESSION_C, REMOTE, _ident(rng), _ident(rng), b"four"),
            _common(SESSION_C, REMOTE, _ident(rng), _ident(rng), b"five"),
            _common(SESSION_A, REMOTE, _ident(rng), _ident(rng), b"six"),
        ]
        for pieces in ([b"".join(messages)], messages):
            for prebind in (True, False):
                slow = self.run_(False, False, prebind, pieces)
                fast = self.run_(True, False, prebind, pieces)
                self.assertEqual(slow, fast)
                bodies = [
                    call[1].body for call in fast[1] if isinstance(call[1], IncomingMessage)
                ]
                self.assertEqual(bodies, [b"one", b"two !close", b"four", b"five"])
                self.assertEqual(fast[0][-1][0].count(b" 481 "), 2)


class FastPathCacheTests(SynchronousTestCase):
    """
    The caches of the fast path and of the parser belong to one connection:
    what one peer sends fills none of another connection's.
    """

    def test_cachesPerConnection(self) -> None:
        """
        After SENDs with odd header names and many paths on one connection,
        another connection's routes and parser caches are still empty.
        """
        busy = World(True, False, prebind=True)
        quiet = World(True, False, prebind=True)
        rng = random.Random(21)
        for index in range(30):
            busy.feed(
                _request(
                    _ident(rng),
                    "SEND",
                    [
                        f"To-Path: {SESSION_A}",
                        f"From-Path: msrp://192.168.1.{index}:7777/s{index:04d};tcp",
                        f"Message-ID: {_ident(rng)}",
                        f"X-Odd-{index}: value",
                        "Content-Type: text/plain",
                    ],
                    b"hello",
                    "+" if index % 2 else "$",
                )
            )
        self.assertTrue(busy.connection._fastRoutes)
        self.assertTrue(busy.connection._parser._headerNames)
        self.assertEqual(quiet.connection._fastRoutes, {})
        parser = quiet.connection._parser
        self.assertEqual(
            (parser._headerNames, parser._methodNames, parser._lineCache, parser._pathLineCache),
            ({}, {}, {}, {}),
        )
        for session in quiet.sessions.values():
            self.assertEqual(session._byteRanges, {})


    def test_longHeaderSectionsNotKept(self) -> None:
        """
        A header section after the Message-ID longer than 512 octets is
        read again for each SEND rather than kept (a peer cannot make a
        connection cache much), and the SENDs are still delivered by the
        fast path, as the parser would deliver them.
        """
        rng = random.Random(22)
        pad = "X-Pad: " + "p" * 600
        messages = [
            _request(
                _ident(rng),
                "SEND",
                [
                    f"To-Path: {SESSION_A}",
                    f"From-Path: {REMOTE}",
                    f"Message-ID: {_ident(rng)}",
                    pad,
                    "Content-Type: text/plain",
                ],
                f"body {index}".encode(),
            )
            for index in range(5)
        ]
        world = World(True, False, prebind=True)
        fed = world.spyOnParser()
        for message in messages:
            world.feed(message)
        # The session is bound already: none goes through the parser.
        self.assertEqual(fed, [])
        [route] = [r for r in world.connection._fastRoutes.values() if r is not None]
        self.assertEqual(route.entries, {})
        self.assertEqual(world.transport.value().count(b" 200 OK\r\n"), 5)
        slow = World(False, False, prebind=True)
        for message in messages:
            slow.feed(message)
        self.assertEqual(slow.transport.value(), world.transport.value())
        self.assertEqual(slow.calls, world.calls)


class FastPathMessageTests(SynchronousTestCase):
    """
    The L{IncomingMessage} of the fast path (filled in through
    C{_IncomingMessageBuilder}, with header fields made on first read) is
    the parser's one for every use: whatever is done first with it.
    """

    def received(self, fast: bool) -> IncomingMessage:
        """
        The message a connection with or without the fast path hands to the
        handler for a common SEND (the second one: the first binds).
        """
        world = World(fast, False, prebind=True)
        rng = random.Random(13)
        world.feed(_common(SESSION_A, REMOTE, _ident(rng), _ident(rng), b"first"))
        world.feed(
            _request(
                "tid00002",
                "SEND",
                [
                    f"To-Path: {SESSION_A}",
                    f"From-Path: {REMOTE}",
                    "Message-ID: mid00002",
                    "Byte-Range: 1-5/5",
                    "X-Extension:  two  spaces",
                    "Failure-Report: partial",
                    "Content-Type: text/plain",
                ],
                b"hello",
            )
        )
        messages = [call[1] for call in world.calls if isinstance(call[1], IncomingMessage)]
        self.assertEqual(len(messages), 2)
        message = messages[1]
        self.assertIs(type(message), IncomingMessage)
        if fast:
            # Not made yet.
            slot = IncomingMessage.__dict__["headers"].slot
            self.assertIs(
                type(slot.__get__(message, IncomingMessage)), fastpathModule.LazyHeaders
            )
        return message

    def test_sameForEveryUse(self) -> None:
        """
        Equality (both ways), hash, repr, pickling, copying,
        L{dataclasses.replace}, L{dataclasses.asdict} and C{astuple}, the
        fields and C{header} give the same results, each when first done.
        """
        slow = self.received(False)
        self.assertEqual(type(slow.headers), tuple)
        uses: list[tuple[str, Callable[[IncomingMessage], Any]]] = [
            ("eq", lambda message: message == slow),
            ("eq reflected", lambda message: slow == message),
            ("ne", lambda message: message != slow),
            ("hash", hash),
            ("repr", repr),
            ("pickle", lambda message: pickle.loads(pickle.dumps(message))),
            ("pickle bytes", pickle.dumps),
            ("copy", copy.copy),
            ("deepcopy", copy.deepcopy),
            ("replace", lambda message: dataclasses.replace(message, body=b"other")),
            ("asdict", dataclasses.asdict),
            ("astuple", dataclasses.astuple),
            ("headers", lambda message: message.headers),
            ("header", lambda message: message.header("x-extension")),
            ("header id", lambda message: message.header("MESSAGE-ID")),
            ("getattr", lambda message: getattr(message, "headers")),
            ("fields", lambda message: [getattr(message, f.name) for f in dataclasses.fields(message)]),
        ]
        for name, use in uses:
            fast = self.received(True)
            self.assertEqual(use(fast), use(slow), name)
            # And then the same again.
            self.assertEqual(use(fast), use(slow), name)
            self.assertEqual(fast, slow, name)
            self.assertEqual(fast.headers, slow.headers, name)
        fast = self.received(True)
        self.assertEqual(
            [field.serialize() for field in fast.headers],
            [
                f"To-Path: {SESSION_A}",
                f"From-Path: {REMOTE}",
                "Message-ID: mid00002",
                "Byte-Range: 1-5/5",
                "X-Extension:  two  spaces",
                "Failure-Report: partial",
                "Content-Type: text/plain",
            ],
        )
        self.assertIs(fast.headers, fast.headers)
        self.assertEqual(fast.failureReport, slow.failureReport)

    def test_frozen(self) -> None:
        """
        The fast path's message is frozen like any other.
        """
        fast = self.received(True)
        for name in ("headers", "body", "messageID"):
            with self.assertRaises(dataclasses.FrozenInstanceError):
                setattr(fast, name, ())
            with self.assertRaises(dataclasses.FrozenInstanceError):
                delattr(fast, name)
        self.assertEqual(fast.body, b"hello")
        self.assertEqual(fast, self.received(False))

    def test_ordinaryMessages(self) -> None:
        """
        Messages made with the constructor keep the header fields given,
        whatever they are; C{object.__setattr__} still sets them.
        """
        given = (messageModule.MSRPHeader("Message-ID", "abcd"),)
        message = IncomingMessage(
            "abcd", "text/plain", b"x", given, 1, (REMOTE,), (SESSION_A,), False,
            messageModule.FailureReport.YES,
        )
        self.assertIs(message.headers, given)
        self.assertEqual(message.header("message-id"), "abcd")
        odd = IncomingMessage(
            "abcd", "text/plain", b"x", [], 1, (REMOTE,), (SESSION_A,), False,  # type: ignore[arg-type]
            messageModule.FailureReport.YES,
        )
        self.assertEqual(odd.headers, [])
        object.__setattr__(message, "headers", ())
        self.assertEqual(message.headers, ())
        self.assertEqual(pickle.loads(pickle.dumps(message)), message)
        self.assertIsInstance(IncomingMessage.__dict__["headers"], fastpathModule._HeadersSlot)
        self.assertIs(vars(IncomingMessage)["headers"], IncomingMessage.headers)


class NestedFeedTests(SynchronousTestCase):
    """
    Bytes fed from a handler while the fast path handles earlier bytes come
    after them.
    """

    def test_nested(self) -> None:
        world = World(True, False)
        rng = random.Random(5)
        messages = [
            _request(
                _ident(rng),
                "SEND",
                [
                    f"To-Path: {SESSION_A}",
                    f"From-Path: {REMOTE}",
                    f"Message-ID: m{index:07d}",
                    "Content-Type: text/plain",
                ],
                f"body {index}".encode(),
            )
            for index in range(4)
        ]
        session = world.sessions[SESSION_A]
        handler = session.handler
        original: Callable[[IncomingMessage], Any] = handler.messageReceived
        fed = []

        def messageReceived(message: IncomingMessage) -> Any:
            if message.messageID == "m0000001" and not fed:
                fed.append(True)
                world.connection.dataReceived(messages[3])
            return original(message)

        handler.messageReceived = messageReceived  # type: ignore[method-assign]
        world.feed(b"".join(messages[:3]))
        received = [
            call[1].messageID for call in world.calls if isinstance(call[1], IncomingMessage)
        ]
        self.assertEqual(received, ["m0000000", "m0000001", "m0000002", "m0000003"])
        self.assertEqual(world.transport.value().count(b" 200 OK"), 4)

