# -*- test-case-name: tests.msrp.test_connectionlimits -*-
"""
Tests for the resource limits of L{stoxgw.msrp.protocol} and
L{stoxgw.msrp.endpoint} (issue 11, items 1 and 2; C{docs/limits.md}):
bounded output toward a peer that does not read, the timeout for accepted
connections bound to no session (RFC 4975 section 5.4), the connection
caps, and that a closed connection leaves nothing behind.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.msrp.builders import buildRequest
from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.message import MSRPResponse
from stoxgw.msrp.protocol import CLOSE_GRACE, MSRPConnection
from stoxgw.msrp.session import IncomingMessage, MSRPSession, SessionState
from stoxgw.msrp.uri import MSRPURI
from tests.msrp.test_protocol import FakeRegistry, FakeSession, peerRequest, written
from tests.msrp.test_session import Handler
from tests.test_limits import NonReadingTransport

PEER = MSRPURI.fromString("msrp://192.0.2.7:7777/peersession;tcp")

#: A read of a peer that floods: 64 SENDs to a session the gateway does not
#: have (each answered 481).
UNKNOWN = b"".join(
    peerRequest(
        toURI=MSRPURI.fromString("msrp://10.0.0.1:2855/nosuchsession;tcp"),
        headers=[("Message-ID", f"m{i:04d}"), ("Byte-Range", "1-5/5")],
    ).serialize()
    for i in range(64)
)


class Forgetful(Handler):
    """
    A session handler that accepts every message and keeps none (so that a
    flood costs the test nothing but what the connection holds).
    """

    def messageReceived(self, message: IncomingMessage) -> Any:
        return None


def lose(connection: MSRPConnection) -> None:
    """
    What the reactor does once a connection is closed.
    """
    connection.connectionLost(Failure(ConnectionDone()))


class QueuedOutputTests(SynchronousTestCase):
    """
    Item 1 on one connection: what is queued for a peer that does not read
    is bounded by C{maxQueuedBytes}.
    """

    def test_floodOfRequestsAborted(self) -> None:
        """
        A peer that sends requests (here to no session: 481s) and never
        reads: once Twisted's buffer is full the answers are queued, and
        past C{maxQueuedBytes} the connection is aborted.  At most 64 KiB
        plus the cap plus the answers of one read were ever held, and the
        flood (at most 10,000 reads of 64 SENDs) was cut early.
        """
        connection = MSRPConnection(registry=FakeRegistry(), maxQueuedBytes=200_000)
        transport = NonReadingTransport()
        connection.makeConnection(transport)
        reads = 0
        with capturedLogs() as events:
            while transport.reading and reads < 10_000:
                connection.dataReceived(UNKNOWN)
                reads += 1
        self.assertTrue(transport.disconnected)
        self.assertLess(reads, 300)
        self.assertLessEqual(transport.largest, (1 << 16) + 200_000 + len(UNKNOWN))
        [event] = [e for e in events if "does not read" in e.get("log_format", "")]
        self.assertEqual(event["limit"], 200_000)

    def test_readingPeerNeverCut(self) -> None:
        """
        A peer that reads its answers is never cut, whatever it sends;
        reading is never paused (MSRP carries bulk data both ways: two
        peers that each stopped reading would wait for each other).
        """
        connection = MSRPConnection(registry=FakeRegistry(), maxQueuedBytes=10_000)
        transport = NonReadingTransport()
        connection.makeConnection(transport)
        for _ in range(500):
            connection.dataReceived(UNKNOWN)
            self.assertEqual(transport.producerState, "producing")
            transport.drain()
        self.assertFalse(transport.disconnecting)

    def test_queueDrainsOnResume(self) -> None:
        """
        Responses queued while paused are written, in order, once the
        transport drains, and no longer count.
        """
        connection = MSRPConnection(registry=FakeRegistry())
        transport = NonReadingTransport()
        connection.makeConnection(transport)
        connection.pauseProducing()
        connection.dataReceived(UNKNOWN)
        self.assertEqual(transport.value(), b"")
        self.assertGreater(connection._queuedBytes, 0)
        connection.resumeProducing()
        answers = written(transport)
        self.assertEqual(len(answers), 64)
        self.assertTrue(
            all(isinstance(a, MSRPResponse) and a.code == 481 for a in answers)
        )
        self.assertEqual(connection._queuedBytes, 0)

    def test_boundSessionFloodFailsIt(self) -> None:
        """
        The same over a bound session's fast path (200s): past the cap the
        connection is aborted and the session fails (R-145).
        """
        reactor = MemoryReactorClock()
        endpoint = MSRPEndpoint(reactor, "10.0.0.1", 2855, maxQueuedBytes=100_000)
        endpoint.startListening()
        handler = Forgetful()
        session = endpoint.createSession(handler, remotePath=(PEER,))
        connection = reactor.tcpServers[0][1].buildProtocol(
            IPv4Address("TCP", "192.0.2.7", 40000)
        )
        transport = NonReadingTransport(
            peerAddress=IPv4Address("TCP", "192.0.2.7", 40000)
        )
        connection.makeConnection(transport)
        read = b"".join(
            buildRequest(
                "SEND",
                (session.localURI,),
                (PEER,),
                [("Message-ID", f"m{i:05d}"), ("Byte-Range", "1-5/5")],
                body=b"hello",
                contentType="text/plain",
            ).serialize()
            for i in range(64)
        )
        reads = 0
        while transport.reading and reads < 10_000:
            connection.dataReceived(read)
            reads += 1
        self.assertTrue(transport.disconnected)
        self.assertLessEqual(transport.largest, (1 << 16) + 100_000 + len(read))
        lose(connection)
        self.assertIs(session.state, SessionState.FAILED)
        self.assertEqual(endpoint.connections, set())


class DisconnectTests(SynchronousTestCase):
    """
    L{MSRPConnection.disconnect} closes even a connection whose peer does
    not read.
    """

    def test_pausedDisconnectAborts(self) -> None:
        """
        A paused connection (its peer does not read) is closed gracefully:
        queued answers written, producer unregistered, then aborted after
        C{CLOSE_GRACE} seconds if it has not closed.
        """
        clock = MemoryReactorClock()
        connection = MSRPConnection(registry=FakeRegistry())
        connection.clock = clock
        transport = NonReadingTransport()
        connection.makeConnection(transport)
        connection.pauseProducing()
        connection.dataReceived(UNKNOWN)
        connection.disconnect()
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(transport.producer)
        self.assertEqual(len(written(transport)), 64)
        clock.advance(CLOSE_GRACE)
        self.assertTrue(transport.disconnected)
        lose(connection)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_disconnectOnce(self) -> None:
        """
        Disconnecting twice, or a connection that is not paused, sets no
        timer.
        """
        clock = MemoryReactorClock()
        connection = MSRPConnection(registry=FakeRegistry())
        connection.clock = clock
        transport = NonReadingTransport()
        connection.makeConnection(transport)
        connection.disconnect()
        connection.disconnect()
        self.assertTrue(transport.disconnecting)
        self.assertEqual(clock.getDelayedCalls(), [])


class EndpointLimitTests(SynchronousTestCase):
    """
    Item 2 on the listener: the unbound timeout and the connection caps.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.endpoint = MSRPEndpoint(
            self.reactor,
            "10.0.0.1",
            2855,
            unboundTimeout=30.0,
            maxConnectionsPerAddress=3,
            maxConnections=5,
        )
        self.endpoint.startListening()

    def accept(
        self, host: str = "192.0.2.7", port: int = 40000
    ) -> tuple[MSRPConnection, NonReadingTransport]:
        """
        Accept a connection on the listener.
        """
        factory = self.reactor.tcpServers[0][1]
        connection = factory.buildProtocol(IPv4Address("TCP", host, port))
        transport = NonReadingTransport(peerAddress=IPv4Address("TCP", host, port))
        connection.makeConnection(transport)
        return connection, transport

    def bind(self, connection: MSRPConnection) -> MSRPSession:
        """
        Bind a new session to an accepted connection with its first SEND.
        """
        session = self.endpoint.createSession(Handler(), remotePath=(PEER,))
        connection.dataReceived(
            buildRequest(
                "SEND", (session.localURI,), (PEER,), [("Message-ID", "m1")]
            ).serialize()
        )
        self.assertIs(session.connection, connection)
        return session

    def test_unboundClosed(self) -> None:
        """
        RFC 4975 5.4: an accepted connection that no request has bound to
        a session 30 s after it was accepted is aborted, and logged.
        """
        _, transport = self.accept()
        self.reactor.advance(29)
        self.assertFalse(transport.disconnecting)
        with capturedLogs() as events:
            self.reactor.advance(1)
        self.assertTrue(transport.disconnected)
        [event] = [
            e for e in events if "bound to no session" in e.get("log_format", "")
        ]
        self.assertEqual(event["timeout"], 30.0)

    def test_requestsForNoSessionDoNotBind(self) -> None:
        """
        Requests that bind nothing (481s) do not save the connection.
        """
        connection, transport = self.accept()
        for _ in range(5):
            connection.dataReceived(UNKNOWN)
            self.reactor.advance(6)
        self.assertTrue(transport.disconnected)

    def test_boundConnectionStays(self) -> None:
        """
        A connection bound in time stays as long as its session, however
        long.
        """
        connection, transport = self.accept()
        self.reactor.advance(20)
        session = self.bind(connection)
        self.reactor.advance(10_000)
        self.assertFalse(transport.disconnecting)
        self.assertIs(session.state, SessionState.BOUND)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_outgoingNotLimited(self) -> None:
        """
        Connections this side opens (bound at once) have no unbound timer
        and do not count under the caps.
        """
        for i in range(6):
            session = self.endpoint.createSession(Handler())
            self.endpoint.connectSession(
                session, (MSRPURI.fromString(f"msrp://192.0.2.7:{7000 + i}/p{i};tcp"),)
            )
            factory = self.reactor.tcpClients[-1][2]
            connection = factory.buildProtocol(
                IPv4Address("TCP", "192.0.2.7", 7000 + i)
            )
            transport = NonReadingTransport(
                peerAddress=IPv4Address("TCP", "192.0.2.7", 7000 + i)
            )
            connection.makeConnection(transport)
            self.assertFalse(transport.disconnecting)
        self.reactor.advance(60)
        self.assertEqual(len(self.endpoint.connections), 6)
        assert self.endpoint.limits is not None
        self.assertEqual(self.endpoint.limits.count, 0)

    def test_perAddressCap(self) -> None:
        """
        A fourth connection from one address is aborted at once; another
        address is served; the refusals are logged once a minute.
        """
        kept = [self.accept(port=40000 + i) for i in range(3)]
        with capturedLogs() as events:
            refused = [self.accept(port=41000 + i) for i in range(4)]
        self.assertTrue(all(t.disconnected for _, t in refused))
        self.assertFalse(any(t.disconnecting for _, t in kept))
        _, other = self.accept("198.51.100.9")
        self.assertFalse(other.disconnecting)
        logged = [e for e in events if "Refused MSRP" in e.get("log_format", "")]
        self.assertEqual(len(logged), 1)
        self.assertEqual(logged[0]["limit"], "per-address")
        for connection, _ in refused:
            lose(connection)
        lose(kept[0][0])
        _, again = self.accept(port=42000)
        self.assertFalse(again.disconnecting)

    def test_totalCap(self) -> None:
        """
        Past five connections in all, any address is refused.
        """
        for i in range(5):
            self.accept(f"198.51.100.{i}")
        _, transport = self.accept("203.0.113.1")
        self.assertTrue(transport.disconnected)

    def test_nothingKept(self) -> None:
        """
        Memory comes back: once a connection is lost (bound or not) the
        endpoint holds no timer, count or reference for it.
        """
        connection, transport = self.accept()
        other, _ = self.accept(port=40001)
        self.bind(other)
        lose(connection)
        lose(other)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(self.endpoint._unbound, {})
        self.assertEqual(self.endpoint._admitted, {})
        self.assertEqual(self.endpoint.connections, set())
        assert self.endpoint.limits is not None
        self.assertEqual(self.endpoint.limits.count, 0)
        reference = weakref.ref(connection)
        del connection, transport
        gc.collect()
        self.assertIsNone(reference())

    def test_defaultsOff(self) -> None:
        """
        Without the options (the library's own use) there is no cap and no
        timer.
        """
        endpoint = MSRPEndpoint(MemoryReactorClock(), "10.0.0.1", 2855)
        self.assertIsNone(endpoint.limits)
        self.assertIsNone(endpoint.unboundTimeout)


class FakeSessionBindTests(SynchronousTestCase):
    """
    A connection built by hand (no endpoint) has no limit but the queue.
    """

    def test_noTimers(self) -> None:
        """
        L{MSRPConnection} alone sets no timer and keeps working.
        """
        session = FakeSession()
        connection = MSRPConnection(registry=FakeRegistry(session))
        transport = NonReadingTransport()
        connection.makeConnection(transport)
        connection.dataReceived(peerRequest().serialize())
        self.assertEqual(len(session.requests), 1)
