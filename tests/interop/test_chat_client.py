# -*- test-case-name: tests.interop.test_chat_client -*-
"""
C{stoxgw-chat} as a real process (C{python -m stoxgw.tools.chat}) against
an in-process echo room: a L{ChatAcceptor} on 127.0.0.1 whose handler
sends one history message when a session starts and echoes each message
back From C{<sip:room@127.0.0.1;gr=echo>}; real sockets, bounded waits.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

import stoxgw
from stoxgw.chat.session import (
    AcceptChat,
    ChatAcceptor,
    ChatDecision,
    ChatEnd,
    ChatOffer,
    ChatSession,
    EndCause,
    IChatOfferHandler,
    IChatSessionHandler,
    RejectChat,
)
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.msrp.session import IncomingMessage
from stoxgw.sip.transport import SIPTransport, TransportKind
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent
from tests.interop.msrpendpoints import startEndpoint

#: The top of the repository (the client's working directory and path).
TOP = os.path.dirname(os.path.dirname(os.path.abspath(stoxgw.__file__)))

#: The room's in-room address of the echo.
ECHO = CPIMAddress("sip:room@127.0.0.1;gr=echo")

#: When the room's history message was first said.
HISTORY_TIME = datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@implementer(IChatSessionHandler, IChatOfferHandler)
class EchoRoom:
    """
    Accepts every chat as a focus; says "welcome" as history, echoes
    messages, takes every nickname.

    @ivar received: The CPIM messages received.
    @ivar nicknames: The nicknames asked for.
    @ivar ended: Fires with the first session's L{ChatEnd}.
    """

    def __init__(self, reject: RejectChat | None = None) -> None:
        self.reject = reject
        self.received: list[CPIMMessage] = []
        self.nicknames: list[str] = []
        self.sessions: list[ChatSession] = []
        self.ready: Deferred[ChatSession] = Deferred()
        self.ended: Deferred[ChatEnd] = Deferred()

    def chatOffered(self, offer: ChatOffer) -> ChatDecision:
        if self.reject is not None:
            return self.reject
        return AcceptChat(
            self,
            requiredTypes=("message/cpim",),
            chatroom=("nickname", "private-messages"),
            isfocus=True,
        )

    def chatStarted(self, session: ChatSession) -> None:
        self.sessions.append(session)
        session.whenReady().addCallbacks(self._ready, lambda _: None)

    def _ready(self, session: ChatSession) -> None:
        """
        Say "welcome" as a message from the past, then tell the test.
        """
        history = CPIMMessage.build(
            contentType="text/plain",
            body=b"welcome",
            fromAddress=ECHO,
            dateTime=HISTORY_TIME,
        )
        session.sendMessage("message/cpim", history.toBytes()).addErrback(
            lambda _: None
        )
        self.ready.callback(session)

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        cpim = CPIMMessage.parse(message.body)
        self.received.append(cpim)
        echo = CPIMMessage.build(
            contentType="text/plain; charset=utf-8",
            body=cpim.body,
            fromAddress=ECHO,
            toAddresses=[cpim.fromAddress] if cpim.fromAddress else [],
            dateTime=datetime.now(timezone.utc),
        )
        session.sendMessage("message/cpim", echo.toBytes()).addErrback(lambda _: None)
        return 200

    def nicknameRequested(self, session: ChatSession, nickname: str) -> Any:
        self.nicknames.append(nickname)
        return 200

    def chatEnded(self, session: ChatSession, reason: ChatEnd) -> None:
        if not self.ended.called:
            self.ended.callback(reason)


class ClientProcess(ProcessProtocol):
    """
    The client's standard output as lines, and Deferreds waiting for them.

    @ivar lines: The lines written so far.
    @ivar exited: Fires with the exit status.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.errors = b""
        self._buffer = b""
        self._waiting: list[tuple[str, Deferred[None]]] = []
        self.exited: Deferred[int] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        for raw in complete:
            line = raw.decode("utf-8")
            self.lines.append(line)
            for expected, d in list(self._waiting):
                if expected == line:
                    self._waiting.remove((expected, d))
                    d.callback(None)

    def errReceived(self, data: bytes) -> None:
        self.errors += data

    def waitFor(self, line: str) -> Deferred[None]:
        """
        Fire once C{line} has been written.
        """
        d: Deferred[None] = Deferred()
        if line in self.lines:
            d.callback(None)
        else:
            self._waiting.append((line, d))
        return d

    def send(self, line: str) -> None:
        """
        Type a line.
        """
        assert self.transport is not None
        self.transport.write(line.encode("utf-8") + b"\n")

    def processEnded(self, reason: Failure) -> None:
        if isinstance(reason.value, (ProcessDone, ProcessTerminated)):
            self.exited.callback(reason.value.exitCode)
        else:
            self.exited.callback(-1)


class ChatClientTests(TestCase):
    """
    The client process joins, chats and leaves.
    """

    timeout = 40

    def room(
        self, kind: TransportKind, reject: RejectChat | None = None
    ) -> tuple[EchoRoom, str]:
        """
        Start the echo room.

        @return: The room and its URI.
        """
        transport = SIPTransport(reactor, "127.0.0.1")
        transport.listenUDP(0)
        transport.listenTCP(0)
        self.addCleanup(transport.stopListening)
        ua = SIPUserAgent(
            reactor, transport, admission=SIPTrust.fromStrings(["127.0.0.1"])
        )
        self.addCleanup(ua.close)
        endpoint = startEndpoint(self, transactionTimeout=10)
        room = EchoRoom(reject)
        ChatAcceptor(ua, endpoint, reactor, room).register()  # type: ignore[arg-type]
        return room, f"sip:room@127.0.0.1:{transport.ports[kind]}"

    def client(self, *arguments: str) -> ClientProcess:
        """
        Start C{python -m stoxgw.tools.chat} with C{arguments}.
        """
        process = ClientProcess()
        environment = dict(os.environ, PYTHONPATH=TOP, TZ="UTC")
        transport = reactor.spawnProcess(  # type: ignore[attr-defined]
            process,
            sys.executable,
            [sys.executable, "-m", "stoxgw.tools.chat", *arguments],
            env=environment,
            path=TOP,
        )

        def stop() -> Deferred[int] | None:
            if process.exited.called:
                return None
            transport.signalProcess("KILL")
            return process.exited

        self.addCleanup(stop)
        return process

    @inlineCallbacks
    def _chat(self, kind: TransportKind) -> Any:
        room, target = self.room(kind)
        client = self.client(
            "--from",
            "sip:alice@example.com",
            "--name",
            "Alice",
            "--nick",
            "Alice",
            "--transport",
            kind.uriParameter,
            "--timeout",
            "10",
            target,
        )
        yield client.waitFor(f"joined {target}")
        yield client.waitFor("nickname Alice: 200")
        yield client.waitFor("[03:04:05] echo welcome")
        client.send("hello")
        yield client.waitFor("echo hello")
        client.send("good night, sweet prince")
        yield client.waitFor("echo good night, sweet prince")
        client.send("/nick Bob")
        yield client.waitFor("nickname Bob: 200")
        assert client.transport is not None
        client.transport.closeStdin()
        status = yield client.exited
        self.assertEqual(status, 0, client.errors)
        ended: ChatEnd = yield room.ended
        self.assertEqual(ended.cause, EndCause.REMOTE_BYE)
        # The history message races with the end of joining and the
        # NICKNAME response.
        self.assertEqual(
            sorted(client.lines[:3]),
            ["[03:04:05] echo welcome", f"joined {target}", "nickname Alice: 200"],
        )
        self.assertEqual(
            client.lines[3:],
            ["echo hello", "echo good night, sweet prince", "nickname Bob: 200"],
        )
        self.assertEqual(room.nicknames, ["Alice", "Bob"])
        first = room.received[0]
        self.assertEqual(
            first.fromAddress, CPIMAddress("sip:alice@example.com", "Alice")
        )
        self.assertEqual(first.toAddresses, (CPIMAddress(target),))
        self.assertIsNotNone(first.dateTime)
        self.assertEqual(first.contentType.mimeType, "text/plain")
        self.assertEqual(
            [m.body for m in room.received], [b"hello", b"good night, sweet prince"]
        )

    def test_udp(self) -> None:
        """
        Join over SIP/UDP, two lines echoed, C{/nick}, end of input: BYE,
        exit status 0.
        """
        return self._chat(TransportKind.UDP)  # type: ignore[no-any-return]

    def test_tcp(self) -> None:
        """
        The same over SIP/TCP.
        """
        return self._chat(TransportKind.TCP)  # type: ignore[no-any-return]

    @inlineCallbacks
    def test_quit(self) -> Any:
        """
        C{/quit} ends with BYE and exit status 0 while input stays open.
        """
        room, target = self.room(TransportKind.UDP)
        client = self.client(target)
        yield client.waitFor(f"joined {target}")
        client.send("/quit")
        status = yield client.exited
        self.assertEqual(status, 0, client.errors)
        ended: ChatEnd = yield room.ended
        self.assertEqual(ended.cause, EndCause.REMOTE_BYE)

    @inlineCallbacks
    def test_remoteBye(self) -> Any:
        """
        The room ending the session prints C{ended: remote BYE}; exit 0.
        """
        room, target = self.room(TransportKind.UDP)
        client = self.client(target)
        yield client.waitFor(f"joined {target}")
        session: ChatSession = yield room.ready
        session.end()
        yield client.waitFor("ended: remote BYE")
        status = yield client.exited
        self.assertEqual(status, 0, client.errors)

    @inlineCallbacks
    def test_rejected(self) -> Any:
        """
        A rejected INVITE prints C{failed: <status> <reason>}; exit 1.
        """
        room, target = self.room(TransportKind.UDP, RejectChat(486, "Busy Here"))
        client = self.client(target)
        status = yield client.exited
        self.assertEqual(status, 1, client.errors)
        self.assertEqual(client.lines, ["failed: 486 Busy Here"])
