# -*- test-case-name: tests.xmpp.test_component -*-
"""
Tests for L{stoxgw.xmpp.component}: the component link's handshake, its
report of a rejected secret, backoff, TCP_NODELAY, TCP_QUICKACK and the
bounded queue.
"""

from __future__ import annotations

import hashlib
import socket
from typing import Any

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.xish import domish
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.xmpp.component import (
    ComponentLink,
    ILinkObserver,
    LinkDown,
    armQuickAck,
    probeComponent,
)

SERVER_HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
    b"xmlns:stream='http://etherx.jabber.org/streams' from='sip.example.com' id='s1'>"
)
NOT_AUTHORIZED = (
    b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
    b"</stream:error></stream:stream>"
)


class NoDelayTransport(StringTransport):
    """
    A string transport that records C{setTcpNoDelay}.
    """

    noDelay = False

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.noDelay = enabled


@implementer(ILinkObserver)
class RecordingObserver:
    """
    Records what a link tells its observers.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def linkUp(self, domain: str) -> None:
        self.events.append(("up", domain))

    def linkDown(self, domain: str, reason: Failure) -> None:
        self.events.append(("down", domain))


class ComponentLinkTests(SynchronousTestCase):
    """
    L{ComponentLink} driven over a memory reactor and string transports.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.link = ComponentLink(
            self.reactor, "sip.example.com", "127.0.0.1", 5347, "hunter2",
            queueSize=2, maxDelay=60.0, jitter=lambda: 0.0,
        )
        self.observer = RecordingObserver()
        self.link.observers.append(self.observer)
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.link.startService()

    def connect(self) -> tuple[Any, NoDelayTransport]:
        """
        Complete the pending TCP connection attempt.
        """
        host, port, factory, *_ = self.reactor.tcpClients[-1]
        self.assertEqual((host, port), ("127.0.0.1", 5347))
        protocol = factory.buildProtocol(None)
        transport = NoDelayTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def test_observerInterface(self) -> None:
        """
        The test observer provides L{ILinkObserver}.
        """
        verifyObject(ILinkObserver, self.observer)

    def test_handshake(self) -> None:
        """
        The link opens a C{jabber:component:accept} stream, sends the
        XEP-0114 handshake, and once the server accepts it is up, with
        TCP_NODELAY set, and observers are told.
        """
        protocol, transport = self.connect()
        self.assertTrue(transport.noDelay)
        self.assertIn(b"jabber:component:accept", transport.value())
        self.assertIn(b"to='sip.example.com'", transport.value())
        transport.clear()
        protocol.dataReceived(SERVER_HEADER)
        # XEP-0114 section 3: hex SHA-1 of the stream id followed by the secret
        expected = hashlib.sha1(b"s1hunter2").hexdigest().encode("ascii")
        self.assertEqual(transport.value(), b"<handshake>" + expected + b"</handshake>")
        self.assertFalse(self.link.up)
        protocol.dataReceived(b"<handshake/>")
        self.assertTrue(self.link.up)
        self.assertEqual(self.observer.events, [("up", "sip.example.com")])
        self.assertIn(
            "XMPP component link up: {domain} at {peer}",
            [e.get("log_format") for e in self.events],
        )

    def test_rejectedSecret(self) -> None:
        """
        A C{not-authorized} stream error is logged as an error naming the
        domain and the secret, and the next attempt waits longer each time
        (no tight retry loop).
        """
        delays = []
        for attempt in range(3):
            protocol, transport = self.connect()
            protocol.dataReceived(SERVER_HEADER)
            protocol.dataReceived(NOT_AUTHORIZED)
            protocol.connectionLost(Failure(ConnectionError("closed")))
            self.assertEqual(self.link.rejections, attempt + 1)
            pending = [call for call in self.reactor.getDelayedCalls() if call.active()]
            delays.append(max(call.getTime() for call in pending) - self.reactor.seconds())
            self.reactor.advance(delays[-1])
        self.assertTrue(delays[0] < delays[1] < delays[2], delays)
        errors = [e for e in self.events if e.get("log_level") == LogLevel.error]
        self.assertEqual(len(errors), 3)
        self.assertEqual(errors[0]["domain"], "sip.example.com")
        self.assertEqual(errors[0]["condition"], "not-authorized")
        self.assertIn("[xmpp] secret", errors[0]["log_format"])
        self.assertEqual(self.observer.events, [])

    def test_acceptedAfterRejection(self) -> None:
        """
        A successful handshake resets the rejection count.
        """
        protocol, _ = self.connect()
        protocol.dataReceived(SERVER_HEADER + NOT_AUTHORIZED)
        protocol.connectionLost(Failure(ConnectionError("closed")))
        self.assertEqual(self.link.rejections, 1)
        self.reactor.advance(60)
        protocol, _ = self.connect()
        protocol.dataReceived(SERVER_HEADER + b"<handshake/>")
        self.assertEqual(self.link.rejections, 0)

    def test_linkLost(self) -> None:
        """
        Losing an established link is a warning and observers are told.
        """
        protocol, _ = self.connect()
        protocol.dataReceived(SERVER_HEADER + b"<handshake/>")
        protocol.connectionLost(Failure(ConnectionError("reset")))
        self.assertFalse(self.link.up)
        self.assertEqual(self.observer.events, [("up", "sip.example.com"), ("down", "sip.example.com")])
        warnings = [e for e in self.events if e.get("log_level") == LogLevel.warn]
        self.assertEqual(warnings[-1]["domain"], "sip.example.com")

    def test_boundedQueue(self) -> None:
        """
        While the link is down, stanzas wait up to the queue size; beyond
        it L{LinkDown} is raised; once up, the queue is flushed in order.
        """
        manager = self.link.streamManager
        for n in range(2):
            message = domish.Element((None, "message"))
            message["id"] = str(n)
            manager.send(message)
        self.assertRaises(LinkDown, manager.send, domish.Element((None, "message")))
        protocol, transport = self.connect()
        protocol.dataReceived(SERVER_HEADER)
        transport.clear()
        protocol.dataReceived(b"<handshake/>")
        self.assertEqual(transport.value(), b"<message id='0'/><message id='1'/>")


class ProbeTests(SynchronousTestCase):
    """
    L{probeComponent}, behind C{--check-config --probe}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.result = probeComponent(
            self.reactor, "sip.example.com", "127.0.0.1", 5347, "hunter2", timeout=5
        )

    def connect(self) -> tuple[Any, StringTransport]:
        host, port, factory, *_ = self.reactor.tcpClients[-1]
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def test_accepted(self) -> None:
        """
        An accepted handshake is success (L{None}) and the probe disconnects.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(SERVER_HEADER + b"<handshake/>")
        self.assertIsNone(self.successResultOf(self.result))
        self.assertTrue(transport.disconnecting)
        self.assertEqual([c for c in self.reactor.getDelayedCalls() if c.active()], [])

    def test_rejected(self) -> None:
        """
        A stream error names the server, the domain and the condition.
        """
        protocol, _ = self.connect()
        protocol.dataReceived(SERVER_HEADER + NOT_AUTHORIZED)
        protocol.connectionLost(Failure(ConnectionError("closed")))
        self.assertEqual(
            self.successResultOf(self.result),
            "XMPP server 127.0.0.1:5347 rejected the component handshake for"
            " sip.example.com (not-authorized)",
        )

    def test_timeout(self) -> None:
        """
        A server that never answers is reported after the timeout.
        """
        self.connect()
        self.reactor.advance(5)
        self.assertEqual(
            self.successResultOf(self.result),
            "no answer from XMPP server 127.0.0.1:5347 for sip.example.com within 5 s",
        )

    def test_connectionRefused(self) -> None:
        """
        A refused connection is reported with the reason.
        """
        from twisted.internet.error import ConnectionRefusedError

        host, port, factory, *_ = self.reactor.tcpClients[-1]
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        # HostnameEndpoint reports the failure once its attempt timer ends.
        self.reactor.advance(1)
        outcome = self.successResultOf(self.result)
        self.assertTrue(outcome.startswith("cannot connect to XMPP server 127.0.0.1:5347"), outcome)


class SocketTransport(StringTransport):
    """
    A string transport whose C{getHandle} is a real TCP socket.
    """

    def __init__(self, handle: socket.socket) -> None:
        super().__init__()
        self.handle = handle

    def getHandle(self) -> socket.socket:
        return self.handle


class Receiver:
    """
    A protocol that keeps what it receives.
    """

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.received: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)


class QuickAckTests(SynchronousTestCase):
    """
    L{armQuickAck} (issue 12: Prosody's Nagle plus our delayed ACKs stalled
    XMPP -> SIP stanzas about 40 ms).  A real TCP socket on 127.0.0.1,
    since only the kernel knows the option; no reactor.
    """

    def setUp(self) -> None:
        if not hasattr(socket, "TCP_QUICKACK"):
            raise self.skipTest("no TCP_QUICKACK on this platform")  # type: ignore[attr-defined]
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.client = socket.create_connection(listener.getsockname())
        self.addCleanup(self.client.close)
        server, _ = listener.accept()
        self.addCleanup(server.close)

    def quickAck(self) -> int:
        return self.client.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK)  # type: ignore[attr-defined]

    def test_rearmedOnEveryRead(self) -> None:
        """
        Quick ACKs are set at once and set again before each read is
        handed on (the kernel clears the mode by itself); the protocol
        still gets the data.
        """
        protocol = Receiver(SocketTransport(self.client))
        self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)  # type: ignore[attr-defined]
        self.assertTrue(armQuickAck(protocol))
        self.assertEqual(self.quickAck(), 1)
        for data in (b"<message/>", b"<presence/>"):
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)  # type: ignore[attr-defined]
            protocol.dataReceived(data)
            self.assertEqual(self.quickAck(), 1)
        self.assertEqual(protocol.received, [b"<message/>", b"<presence/>"])

    def test_noSocket(self) -> None:
        """
        A transport without a socket (here a L{StringTransport}) is left
        alone.
        """
        protocol = Receiver(StringTransport())
        original = protocol.dataReceived
        self.assertFalse(armQuickAck(protocol))
        self.assertEqual(protocol.dataReceived, original)
