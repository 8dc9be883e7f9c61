# -*- test-case-name: tests.xmpp.test_componentflow -*-
"""
Tests for the flow control of L{stoxgw.xmpp.component} (issue 11, item 1;
C{docs/limits.md}): an XMPP server that does not read makes stanzas wait
in the bounded queue, not in the transport, and a server that reads
nothing for C{writeTimeout} seconds is dropped and connected again; more
than 64 KiB written in one reactor turn to a socket that takes it is not
congestion (issue 12).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import IPushProducer
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.xish import domish
from zope.interface.verify import verifyObject

from stoxgw.xmpp.component import ComponentLink, LinkDown
from tests.test_limits import NonReadingTransport
from tests.xmpp.test_component import SERVER_HEADER


def message(n: int, size: int = 1000) -> domish.Element:
    """
    A groupchat message of about C{size} octets, numbered C{n}.
    """
    element = domish.Element((None, "message"))
    element["id"] = str(n)
    element["to"] = "room@muc.example.com"
    element.addElement("body", content="x" * size)
    return element


class SocketTransport(FileDescriptor):
    """
    Twisted's own L{FileDescriptor} write path (its buffer, C{bufferSize},
    producer pauses and C{doWrite}) over a fake socket whose kernel buffers
    hold C{room} octets the server has not read: C{writeSomeData} takes at
    most that much (and at most C{SEND_LIMIT} per call, as TCP's does), so a
    server that stops reading makes a write leave data unsent.

    @ivar received: what reached the server's side of the socket.
    @ivar unread: how much of it the server has not read.
    @ivar aborted: whether C{abortConnection} was called.
    """

    connected = 1

    def __init__(self, reactor: MemoryReactorClock, room: int) -> None:
        super().__init__(reactor)
        self.room = room
        self.received = bytearray()
        self.unread = 0
        self.aborted = False

    def writeSomeData(self, data: bytes) -> int:
        n = max(0, min(len(data), self.SEND_LIMIT, self.room - self.unread))
        self.received += bytes(data[:n])
        self.unread += n
        return n

    def endTurn(self) -> None:
        """
        What the reactor does at the end of a turn: write if asked to.
        """
        if self in self.reactor.getWriters():
            self.doWrite()

    def serverReads(self) -> None:
        """
        The server reads everything the socket holds; the reactor writes.
        """
        self.unread = 0
        self.endTurn()

    def abortConnection(self) -> None:
        self.aborted = True

    def getPeer(self) -> Any:
        return None

    def getHost(self) -> Any:
        return None


class LinkTestCase(SynchronousTestCase):
    """
    A started L{ComponentLink} on a memory reactor: a queue of 5 stanzas,
    a 60 s C{writeTimeout}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.link = ComponentLink(
            self.reactor,
            "sip.example.com",
            "127.0.0.1",
            5347,
            "hunter2",
            queueSize=5,
            maxDelay=1.0,
            jitter=lambda: 0.0,
            writeTimeout=60.0,
        )
        self.link.startService()
        self.addCleanup(self.link.stopService)
        self.manager = self.link.streamManager


class SocketFlowTests(LinkTestCase):
    """
    L{ComponentLink} over Twisted's own write path: the link is congested
    only once the socket is full, not when one reactor turn writes more
    than 64 KiB (issue 12).
    """

    def connect(self, room: int) -> SocketTransport:
        """
        Complete the pending connection attempt and the handshake over a
        L{SocketTransport} with C{room} octets of socket buffers.
        """
        factory = self.reactor.tcpClients[-1][2]
        protocol = factory.buildProtocol(None)
        transport = SocketTransport(self.reactor, room)
        protocol.makeConnection(transport)
        protocol.dataReceived(SERVER_HEADER + b"<handshake/>")
        transport.endTurn()
        self.assertTrue(self.link.up)
        return transport

    def stalls(self) -> list[Any]:
        return [c for c in self.reactor.getDelayedCalls() if "_stalled" in repr(c)]

    def test_burstTakenIsNotCongestion(self) -> None:
        """
        300 KB of stanzas written in one reactor turn to a socket that
        takes them all: Twisted pauses the producer at 64 KiB, but the link
        is never congested, nothing is held or refused (the queue holds 5),
        no stall timer runs, and the server gets every stanza in order.
        """
        transport = self.connect(room=4 << 20)
        for n in range(300):
            self.manager.send(message(n))
            self.assertFalse(self.manager.congested)
        self.assertEqual(self.manager._held, [])
        self.assertEqual(self.stalls(), [])
        transport.endTurn()
        data = bytes(transport.received)
        ids = [data.index(b"<message id='%d'" % n) for n in range(300)]
        self.assertEqual(ids, sorted(ids))

    def test_fullSocketIsCongestion(self) -> None:
        """
        A server that stops reading: once a write leaves data unsent (its
        128 KiB of socket buffers full), the link is congested, stanzas are
        held up to C{queueSize}, the next one raises L{LinkDown}, and after
        C{writeTimeout} seconds the connection is aborted, as before.
        """
        transport = self.connect(room=128 << 10)
        sent = 0
        while not self.manager.congested and sent < 1000:
            self.manager.send(message(sent))
            sent += 1
        self.assertTrue(self.manager.congested)
        self.assertGreater(len(transport.received), 120 << 10)
        self.assertLess(sent, 300)
        for n in range(5):
            self.manager.send(message(1000 + n))
        self.assertEqual(len(self.manager._held), 5)
        self.assertRaises(LinkDown, self.manager.send, message(2000))
        transport.endTurn()
        self.assertTrue(self.manager.congested)
        self.reactor.advance(59)
        self.assertFalse(transport.aborted)
        self.reactor.advance(1)
        self.assertTrue(transport.aborted)

    def test_serverReadsReleasesHeld(self) -> None:
        """
        When a congested server reads again, the reactor's next write
        drains the transport, the link is no longer congested, the held
        stanzas go out in order and the stall timer is cancelled.
        """
        transport = self.connect(room=128 << 10)
        sent = 0
        while not self.manager.congested and sent < 1000:
            self.manager.send(message(sent))
            sent += 1
        for n in range(3):
            self.manager.send(message(1000 + n, size=10))
        # The first write drains the transport (the held stanzas are
        # written to it), the second takes those to the server.
        transport.serverReads()
        transport.serverReads()
        self.assertFalse(self.manager.congested)
        self.assertEqual(self.manager._held, [])
        self.assertEqual(self.stalls(), [])
        data = bytes(transport.received)
        self.assertLess(data.index(b"id='%d'" % (sent - 1)), data.index(b"id='1000'"))
        self.assertLess(data.index(b"id='1000'"), data.index(b"id='1001'"))
        self.assertLess(data.index(b"id='1001'"), data.index(b"id='1002'"))

    def test_largeReleaseInOrder(self) -> None:
        """
        Releasing 500 KB of held stanzas to a server that reads again
        pauses the producer many times; each pause writes to the socket,
        which takes it, so the release goes on to the end, in order.
        """
        self.manager.queueSize = 500
        transport = self.connect(room=128 << 10)
        sent = 0
        while not self.manager.congested and sent < 1000:
            self.manager.send(message(sent))
            sent += 1
        for n in range(500):
            self.manager.send(message(1000 + n))
        transport.room = 4 << 20
        transport.serverReads()
        transport.endTurn()
        self.assertFalse(self.manager.congested)
        self.assertEqual(self.manager._held, [])
        data = bytes(transport.received)
        ids = [data.index(b"<message id='%d'" % n) for n in range(1000, 1500)]
        self.assertEqual(ids, sorted(ids))


class ComponentFlowTests(LinkTestCase):
    """
    L{ComponentLink} over a transport whose server never reads.
    """

    def connect(self) -> tuple[Any, NonReadingTransport]:
        """
        Complete the pending connection attempt and the handshake.
        """
        factory = self.reactor.tcpClients[-1][2]
        protocol = factory.buildProtocol(None)
        transport = NonReadingTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(SERVER_HEADER + b"<handshake/>")
        self.assertTrue(self.link.up)
        transport.clear()
        return protocol, transport

    def fill(self, transport: NonReadingTransport) -> int:
        """
        Send stanzas until Twisted's buffer is full (at most 1,000).

        @return: How many were sent.
        """
        sent = 0
        while not self.manager.congested and sent < 1000:
            self.manager.send(message(sent))
            sent += 1
        self.assertTrue(self.manager.congested)
        return sent

    def test_producer(self) -> None:
        """
        The link's transport has a streaming producer that tells the stream
        manager of pauses (L{IPushProducer}).
        """
        _, transport = self.connect()
        self.assertTrue(verifyObject(IPushProducer, transport.producer))
        self.assertTrue(transport.streaming)

    def test_heldNotBuffered(self) -> None:
        """
        Once 64 KiB wait for the server, stanzas are held in the bounded
        queue (the transport does not grow), and beyond C{queueSize}
        L{LinkDown} tells the caller, so it can answer the sender.
        """
        _, transport = self.connect()
        sent = self.fill(transport)
        self.assertLess(sent, 80)
        size = len(transport.value())
        for n in range(5):
            self.manager.send(message(1000 + n))
        self.assertEqual(len(transport.value()), size)
        self.assertRaises(LinkDown, self.manager.send, message(2000))
        self.assertLessEqual(transport.largest, (1 << 16) + 1200)

    def test_drainSendsHeldInOrder(self) -> None:
        """
        When the server has read, the held stanzas go out in order.
        """
        _, transport = self.connect()
        self.fill(transport)
        for n in range(3):
            self.manager.send(message(1000 + n, size=10))
        transport.drain()
        self.assertFalse(self.manager.congested)
        data = transport.value()
        self.assertLess(data.index(b"id='1000'"), data.index(b"id='1001'"))
        self.assertLess(data.index(b"id='1001'"), data.index(b"id='1002'"))
        self.assertEqual(self.manager._held, [])

    def test_stalledServerDropped(self) -> None:
        """
        A server that reads nothing for C{writeTimeout} seconds is dropped
        (the transport aborted, its buffer freed); the held stanzas are the
        first to go out on the next stream.
        """
        protocol, transport = self.connect()
        self.fill(transport)
        self.manager.send(message(1000, size=10))
        self.reactor.advance(59)
        self.assertFalse(transport.disconnecting)
        with capturedLogs() as events:
            self.reactor.advance(1)
        self.assertTrue(transport.disconnected)
        [event] = [e for e in events if "read nothing" in e.get("log_format", "")]
        self.assertEqual(event["held"], 1)
        protocol.connectionLost(Failure(ConnectionError("aborted")))
        self.assertFalse(self.link.up)
        self.reactor.advance(2)
        factory = self.reactor.tcpClients[-1][2]
        newProtocol = factory.buildProtocol(None)
        newTransport = NonReadingTransport()
        newProtocol.makeConnection(newTransport)
        newTransport.clear()
        newProtocol.dataReceived(SERVER_HEADER + b"<handshake/>")
        data = newTransport.value()
        self.assertEqual(data.index(b"<message"), data.index(b"<message id='1000'"))

    def test_readsInTimeKeepLink(self) -> None:
        """
        A server that reads before C{writeTimeout} keeps its link.
        """
        _, transport = self.connect()
        for _ in range(5):
            self.fill(transport)
            self.reactor.advance(50)
            transport.drain()
        self.reactor.advance(120)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(
            [c for c in self.reactor.getDelayedCalls() if "_stalled" in repr(c)], []
        )

    def test_noTimerAfterLoss(self) -> None:
        """
        Losing the link cancels the stall timer.
        """
        protocol, transport = self.connect()
        self.fill(transport)
        protocol.connectionLost(Failure(ConnectionError("reset")))
        self.assertEqual(
            [c for c in self.reactor.getDelayedCalls() if "_stalled" in repr(c)], []
        )
        self.assertFalse(self.manager.congested)
