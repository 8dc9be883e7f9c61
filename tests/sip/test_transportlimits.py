# -*- test-case-name: tests.sip.test_transportlimits -*-
"""
Tests for the resource limits of L{stoxgw.sip.transport} (issue 11, items 1
and 2; C{docs/limits.md}): bounded output toward a peer that does not read,
the read and idle timeouts, connection caps, and that a closed connection
leaves nothing behind.  Everything on a L{MemoryReactorClock}.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IPushProducer
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stoxgw.sip.framing import SIPStreamParser
from stoxgw.sip.message import SIPRequest, SIPResponse, parseDatagram
from stoxgw.sip.transport import (
    CLOSE_GRACE,
    TRANSACTION_HOLD,
    Address,
    SIPStreamConnection,
    SIPTransport,
    TransportKind,
)
from tests.sip.test_transport import (
    INVITE,
    InMemoryTLSMixin,
    RecordingUser,
    peerFactory,
    tlsLoopback,
)
from tests.test_limits import NonReadingTransport

PEER = ("198.51.100.7", 40000)

#: The Call-ID of L{INVITE}.
CALL_ID = "a84b4c76e66710@pc33.example.com"

#: An OPTIONS from the peer (RFC 3261 section 11).
OPTIONS = (
    b"OPTIONS sip:gw.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 198.51.100.7:40000;branch=z9hG4bKopt1\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:gw.example.com>\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"Call-ID: options-1@198.51.100.7\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def inDialog(
    method: str, cseq: int, extra: bytes = b"", callID: bytes | None = None
) -> bytes:
    """
    A request within the dialog of L{INVITE} (answered with To tag C{gw}).
    """
    return (
        f"{method} sip:alice@client.example.com:5070 SIP/2.0\r\n".encode()
        + f"Via: SIP/2.0/TCP 198.51.100.7:40000;branch=z9hG4bK{method.lower()}{cseq}\r\n".encode()
        + b"Max-Forwards: 70\r\n"
        b"To: <sip:room@192.0.2.1>;tag=gw\r\n"
        b"From: <sip:alice@example.com>;tag=1928301774\r\n"
        + b"Call-ID: "
        + (callID or b"a84b4c76e66710@pc33.example.com")
        + b"\r\n"
        + f"CSeq: {cseq} {method}\r\n".encode()
        + extra
        + b"Content-Length: 0\r\n\r\n"
    )


def limitedTransport(
    **options: Any,
) -> tuple[SIPTransport, MemoryReactorClock, RecordingUser]:
    """
    A L{SIPTransport} on a memory reactor with the service's default
    limits (unless overridden) and a recording user.
    """
    reactor = MemoryReactorClock()
    settings: dict[str, Any] = {
        "idleTimeout": 120.0,
        "readTimeout": 30.0,
        "maxConnectionsPerAddress": 50,
        "maxConnections": 2000,
    }
    settings.update(options)
    transport = SIPTransport(reactor, "192.0.2.1", **settings)
    user = RecordingUser()
    transport.user = user
    return transport, reactor, user


def accept(
    transport: SIPTransport,
    peer: tuple[str, int] = PEER,
    kind: TransportKind = TransportKind.TCP,
) -> tuple[SIPStreamConnection, NonReadingTransport]:
    """
    A connection accepted by a listener, on a transport whose peer never
    reads.
    """
    connection = SIPStreamConnection(transport, kind, accepted=True)
    string = NonReadingTransport(peerAddress=IPv4Address("TCP", *peer))
    connection.makeConnection(string)
    return connection, string


def acceptInvite(
    transport: SIPTransport, connection: SIPStreamConnection, user: RecordingUser
) -> None:
    """
    Receive L{INVITE} over C{connection} and answer it 200 (To tag C{gw})
    over it.
    """
    connection.dataReceived(INVITE.replace(b"UDP client", b"TCP client"))
    request, flow = user.received[-1]
    assert isinstance(request, SIPRequest)
    transport.sendResponse(request.makeResponse(200, toTag="gw"), flow)


def lose(connection: SIPStreamConnection) -> None:
    """
    What the reactor does once a connection is closed.
    """
    connection.connectionLost(Failure(ConnectionError("closed")))


class OutputBoundTests(SynchronousTestCase):
    """
    Item 1: a peer that sends and never reads does not make the gateway
    queue without bound.
    """

    def test_producer(self) -> None:
        """
        The connection is a push producer, registered as the streaming
        producer of its own transport.
        """
        transport, _, _ = limitedTransport()
        connection, string = accept(transport)
        self.assertTrue(verifyObject(IPushProducer, connection))
        self.assertIs(string.producer, connection)
        self.assertTrue(string.streaming)

    def test_pingFloodPausesReading(self) -> None:
        """
        RFC 5626 3.5.1 pings are answered before any trust check; from a
        peer that never reads the pongs fill Twisted's buffer, the
        connection stops reading, and what waits for the peer stays under
        64 KiB plus the pongs of one read.  A flood of 4 KiB reads, at most
        2,000 of them (8 MB), is cut off by the pause long before.
        """
        transport, _, _ = limitedTransport()
        connection, string = accept(transport)
        read = b"\r\n\r\n" * 1024
        reads = 0
        while string.reading and reads < 2000:
            connection.dataReceived(read)
            reads += 1
        self.assertFalse(string.reading)
        self.assertEqual(string.producerState, "paused")
        self.assertTrue(connection.paused)
        self.assertFalse(string.disconnecting)
        self.assertLess(reads, 40)
        self.assertLessEqual(string.largest, (1 << 16) + len(read) // 2)

    def test_resumeReadsAgain(self) -> None:
        """
        Once the peer has read what waited, the connection reads again.
        """
        transport, _, _ = limitedTransport()
        connection, string = accept(transport)
        while string.reading:
            connection.dataReceived(b"\r\n\r\n" * 1024)
        self.assertEqual(set(string.drain()), set(b"\r\n"))
        self.assertFalse(connection.paused)
        self.assertEqual(string.producerState, "producing")
        connection.dataReceived(b"\r\n\r\n")
        self.assertEqual(string.value(), b"\r\n")

    def test_outputCapAborts(self) -> None:
        """
        What is still written while paused (here: a peer's reads delivered
        regardless, as a TLS layer may) is counted; beyond
        C{maxOutputBytes} the connection is aborted, so at most 64 KiB plus
        the cap plus one read's pongs were ever held.
        """
        transport, _, _ = limitedTransport(maxOutputBytes=100_000)
        connection, string = accept(transport)
        read = b"\r\n\r\n" * 1024
        with capturedLogs() as events:
            for _ in range(1000):
                if string.disconnecting:
                    break
                connection.dataReceived(read)
        self.assertTrue(string.disconnected)
        self.assertLessEqual(string.largest, (1 << 16) + 100_000 + len(read) // 2)
        [event] = [e for e in events if "does not read" in e.get("log_format", "")]
        self.assertEqual(event["peer"], "TCP:198.51.100.7:40000")

    def test_requestsToPausedPeerCapped(self) -> None:
        """
        Requests the gateway sends to a peer that does not read (NOTIFYs
        to a stuck proxy) are bounded the same way: the send that passes
        the cap aborts the connection and later ones fail.
        """
        transport, _, _ = limitedTransport(maxOutputBytes=10_000)
        connection, string = accept(transport)
        request = parseDatagram(INVITE)
        destination = Address(TransportKind.TCP, *PEER)
        results = [transport.sendMessage(request, destination) for _ in range(600)]
        self.assertTrue(string.disconnected)
        self.assertLessEqual(string.largest, (1 << 16) + 10_000 + len(INVITE))
        lose(connection)
        failed = transport.sendMessage(request, destination)
        self.assertNoResult(failed)  # a new connection is being made
        self.assertTrue(all(d.called for d in results))
        failures = [d for d in results if isinstance(d.result, Failure)]
        self.assertGreater(len(failures), 0)
        for d in failures:
            self.failureResultOf(d)

    def test_stalledPeerAborted(self) -> None:
        """
        A connection paused for C{readTimeout} seconds (the peer reads
        nothing) is aborted; one that drains in time is not.
        """
        transport, reactor, _ = limitedTransport(readTimeout=30.0)
        connection, string = accept(transport)
        connection.pauseProducing()
        reactor.advance(29)
        connection.resumeProducing()
        reactor.advance(60)
        self.assertFalse(string.disconnecting)
        connection.pauseProducing()
        with capturedLogs() as events:
            reactor.advance(30)
        self.assertTrue(string.disconnected)
        self.assertEqual(
            len([e for e in events if "read nothing" in e.get("log_format", "")]), 1
        )

    def test_tlsProducerAndClose(self) -> None:
        """
        Over TLS the connection is the producer of the TLS transport (its
        pauses come through Twisted's TLS layer), a pause before the
        handshake does not stop reading the handshake, and L{close} still
        closes (a TLS transport never sends close_notify while a producer
        is registered, so it unregisters first).
        """
        mixin = InMemoryTLSMixin()
        mixin.mktemp = self.mktemp  # type: ignore[method-assign]
        mixin.assertEqual = self.assertEqual  # type: ignore[method-assign]
        mixin.makeCertificates()
        connection, peer, _ = mixin.connectAsClient(certificate=mixin.proxy)
        self.assertTrue(connection.ready)
        tls: Any = connection.transport
        self.assertIs(tls._producer._producer, connection)
        connection.close()
        self.assertTrue(tls.disconnecting)

    def test_pauseDuringHandshakeKeepsReading(self) -> None:
        """
        A TLS connection not ready yet (handshake running) is never paused
        for reading: the handshake needs the peer's octets.
        """
        transport, _, _ = limitedTransport()
        connection = SIPStreamConnection(transport, TransportKind.TLS, accepted=True)
        string = NonReadingTransport(peerAddress=IPv4Address("TCP", *PEER))
        connection.makeConnection(string)
        self.assertFalse(connection.ready)
        connection.pauseProducing()
        self.assertEqual(string.producerState, "producing")


class ReadTimeoutTests(SynchronousTestCase):
    """
    Item 2: a message must be complete C{readTimeout} seconds after its
    first octet.
    """

    def test_slowHeadersCut(self) -> None:
        """
        A peer sending one octet a second is cut when the message is
        C{readTimeout} (30) seconds old, having sent 31 octets.
        """
        transport, reactor, user = limitedTransport()
        connection, string = accept(transport)
        sent = 0
        with capturedLogs() as events:
            while not string.disconnecting and sent < len(INVITE):
                connection.dataReceived(INVITE[sent : sent + 1])
                sent += 1
                reactor.advance(1)
        self.assertTrue(string.disconnected)
        self.assertEqual(sent, 30)
        self.assertEqual(user.received, [])
        [event] = [e for e in events if "did not complete" in e.get("log_format", "")]
        self.assertEqual(event["timeout"], 30.0)

    def test_slowBodyCut(self) -> None:
        """
        The timeout covers the body too (here one that is skipped).
        """
        transport, reactor, _ = limitedTransport(readTimeout=5.0)
        connection, string = accept(transport)
        connection.dataReceived(
            INVITE.replace(b"Content-Length: 0", b"Content-Length: 9")
        )
        reactor.advance(4)
        connection.dataReceived(b"v=0")
        self.assertFalse(string.disconnecting)
        reactor.advance(1)
        self.assertTrue(string.disconnected)

    def test_eachMessageItsOwnTime(self) -> None:
        """
        Steady traffic whose messages each take less than the timeout is
        never cut, nor are pauses between messages.
        """
        transport, reactor, user = limitedTransport(readTimeout=30.0)
        connection, string = accept(transport)
        half = len(OPTIONS) // 2
        for i in range(10):
            message = OPTIONS.replace(b"opt1", b"opt1%d" % i)
            connection.dataReceived(message[:half])
            reactor.advance(20)
            connection.dataReceived(message[half:])
            reactor.advance(25)
            transport.sendResponse(user.received[-1][0].makeResponse(200, toTag="t"), user.received[-1][1])  # type: ignore[union-attr]
        self.assertEqual(len(user.received), 10)
        self.assertFalse(string.disconnecting)

    def test_timerGoneBetweenMessages(self) -> None:
        """
        No read timer runs while nothing of a message is held (CRLF
        keep-alives included).
        """
        transport, reactor, _ = limitedTransport(idleTimeout=None)
        connection, _ = accept(transport)
        connection.dataReceived(OPTIONS)
        connection.dataReceived(b"\r\n\r\n\r\n")
        self.assertIsNone(connection._readCall)
        connection.dataReceived(b"OPT")
        self.assertIsNotNone(connection._readCall)


class IdleTimeoutTests(SynchronousTestCase):
    """
    Item 2: connections without dialog or transaction are closed after
    C{idleTimeout} seconds without a SIP message; those with one stay.
    """

    def test_idleConnectionClosed(self) -> None:
        """
        A connection nothing passes on is closed after 120 s (gracefully,
        then aborted if it has not closed C{CLOSE_GRACE} seconds later).
        """
        transport, reactor, _ = limitedTransport()
        connection, string = accept(transport)
        reactor.advance(119)
        self.assertFalse(string.disconnecting)
        with capturedLogs() as events:
            reactor.advance(1)
        self.assertTrue(string.disconnecting)
        self.assertFalse(string.disconnected)
        self.assertIsNone(string.producer)
        self.assertEqual(
            len([e for e in events if "idle" in e.get("log_format", "")]), 1
        )
        reactor.advance(CLOSE_GRACE)
        self.assertTrue(string.disconnected)

    def test_pingsDoNotKeepAlive(self) -> None:
        """
        CRLF keep-alives are answered but are not traffic: a connection
        that only pings is closed all the same.
        """
        transport, reactor, _ = limitedTransport()
        connection, string = accept(transport)
        for _ in range(12):
            connection.dataReceived(b"\r\n\r\n")
            reactor.advance(10)
        self.assertTrue(string.disconnecting)

    def test_messagesPostponeIt(self) -> None:
        """
        Each message (answered at once) starts the idle time again.
        """
        transport, reactor, user = limitedTransport()
        connection, string = accept(transport)
        reactor.advance(100)
        connection.dataReceived(OPTIONS)
        request, flow = user.received[0]
        assert isinstance(request, SIPRequest)
        transport.sendResponse(request.makeResponse(200, toTag="t"), flow)
        reactor.advance(119)
        self.assertFalse(string.disconnecting)
        reactor.advance(1)
        self.assertTrue(string.disconnecting)

    def test_openTransactionKeepsIt(self) -> None:
        """
        A request not answered yet keeps its connection, for
        C{TRANSACTION_HOLD} seconds at most.
        """
        transport, reactor, _ = limitedTransport()
        connection, string = accept(transport)
        connection.dataReceived(OPTIONS)
        reactor.advance(TRANSACTION_HOLD - 1)
        self.assertFalse(string.disconnecting)
        self.assertTrue(connection.inUse())
        reactor.advance(120)
        self.assertTrue(string.disconnecting)

    def test_dialogKeepsIt(self) -> None:
        """
        A connection over which the dialog the UA core started came
        carries it: it stays, however long the dialog is silent (its chat
        runs over MSRP), until the dialog ends; then it is idle again.
        """
        transport, reactor, user = limitedTransport()
        connection, string = accept(transport)
        acceptInvite(transport, connection, user)
        _, flow = user.received[-1]
        transport.dialogStarted(CALL_ID, flow)
        self.assertEqual(connection.dialogs, {CALL_ID})
        reactor.advance(10_000)
        self.assertFalse(string.disconnecting)
        transport.dialogEnded(CALL_ID)
        self.assertEqual(connection.dialogs, set())
        self.assertEqual(
            (transport._dialogUsages, transport._dialogConnections), ({}, {})
        )
        reactor.advance(120)
        self.assertTrue(string.disconnecting)

    def test_messagesMakeNoDialog(self) -> None:
        """
        Issue #13: the transport no longer guesses dialogs from what it
        carries: an INVITE answered 2xx nobody said started a dialog
        leaves its connection idle.
        """
        transport, reactor, user = limitedTransport()
        connection, string = accept(transport)
        acceptInvite(transport, connection, user)
        self.assertEqual(connection.dialogs, set())
        reactor.advance(120)
        self.assertTrue(string.disconnecting)

    def test_usagesCounted(self) -> None:
        """
        Each usage of a dialog (the INVITE one, a subscription in it) is
        started and ended on its own: the connection carries the dialog
        until the last one ends.
        """
        transport, reactor, user = limitedTransport()
        connection, string = accept(transport)
        acceptInvite(transport, connection, user)
        transport.dialogStarted(CALL_ID, user.received[-1][1])
        transport.dialogStarted(CALL_ID)
        transport.dialogEnded(CALL_ID)
        self.assertEqual(connection.dialogs, {CALL_ID})
        reactor.advance(1000)
        self.assertFalse(string.disconnecting)
        transport.dialogEnded(CALL_ID)
        transport.dialogEnded(CALL_ID)
        self.assertEqual(connection.dialogs, set())

    def test_inDialogRequestMarksOtherConnection(self) -> None:
        """
        A message of a live dialog on another connection (the peer
        reconnected) makes that connection carry the dialog too; one with
        an unknown Call-ID does not; a lost connection carries nothing.
        """
        transport, reactor, user = limitedTransport()
        first, _ = accept(transport)
        acceptInvite(transport, first, user)
        transport.dialogStarted(CALL_ID, user.received[-1][1])
        second, string = accept(transport, ("198.51.100.7", 40001))
        second.dataReceived(inDialog("INFO", 314160))
        self.assertEqual(second.dialogs, {CALL_ID})
        third, _ = accept(transport, ("198.51.100.7", 40002))
        third.dataReceived(inDialog("INFO", 1, callID=b"unknown@example.com"))
        self.assertEqual(third.dialogs, set())
        reactor.advance(1000)
        self.assertFalse(string.disconnecting)
        lose(first)
        self.assertEqual(first.dialogs, set())
        self.assertEqual(transport._dialogConnections, {CALL_ID: {second}})

    def test_outgoingConnectionsToo(self) -> None:
        """
        A connection the gateway opened is closed when idle as well, and
        kept while its INVITE dialog lives (here the 2xx comes back on it).
        """
        transport, reactor, _ = limitedTransport()
        destination = Address(TransportKind.TCP, "203.0.113.5", 5060)
        request = parseDatagram(INVITE)
        d = transport.sendMessage(request, destination)
        factory = reactor.tcpClients[0][2]
        connection = factory.buildProtocol(None)
        string = NonReadingTransport(
            peerAddress=IPv4Address("TCP", "203.0.113.5", 5060)
        )
        connection.makeConnection(string)
        self.successResultOf(d)
        connection.dataReceived(
            b"SIP/2.0 200 OK\r\n"
            b"Via: SIP/2.0/UDP client.example.com:5070;branch=z9hG4bK776asdhds\r\n"
            b"To: <sip:room@192.0.2.1>;tag=focus\r\n"
            b"From: <sip:alice@example.com>;tag=1928301774\r\n"
            b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
            b"CSeq: 314159 INVITE\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        # The UA core makes the dialog from that 2xx and ACKs it.
        transport.dialogStarted(CALL_ID)
        ack = parseDatagram(inDialog("ACK", 314159))
        self.successResultOf(transport.sendMessage(ack, destination))
        self.assertEqual(connection.dialogs, {CALL_ID})
        reactor.advance(1000)
        self.assertFalse(string.disconnecting)
        self.assertEqual(transport.limits.count if transport.limits else 0, 0)


class ConnectionCapTests(SynchronousTestCase):
    """
    Item 2: per-address and total caps on accepted connections.
    """

    def test_perAddressCap(self) -> None:
        """
        Beyond C{maxConnectionsPerAddress} connections from one address a
        new one is aborted at once (before reading anything); others are
        served; the refusal is logged once a minute per address.
        """
        transport, reactor, _ = limitedTransport(maxConnectionsPerAddress=3)
        kept = [accept(transport, ("198.51.100.7", 40000 + i)) for i in range(3)]
        with capturedLogs() as events:
            refused = [accept(transport, ("198.51.100.7", 41000 + i)) for i in range(5)]
            reactor.advance(60)
            refused.append(accept(transport, ("198.51.100.7", 42000)))
        self.assertTrue(all(string.disconnected for _, string in refused))
        self.assertFalse(any(string.disconnecting for _, string in kept))
        other, string = accept(transport, ("203.0.113.9", 5060))
        self.assertFalse(string.disconnecting)
        logged = [e for e in events if "Refused SIP" in e.get("log_format", "")]
        self.assertEqual(len(logged), 2)
        self.assertEqual(logged[0]["limit"], "per-address")
        lose(kept[0][0])
        _, string = accept(transport, ("198.51.100.7", 43000))
        self.assertFalse(string.disconnecting)

    def test_totalCap(self) -> None:
        """
        Beyond C{maxConnections} in all, every address is refused.
        """
        transport, _, _ = limitedTransport(maxConnections=4)
        for i in range(4):
            accept(transport, (f"198.51.100.{i}", 5060))
        _, string = accept(transport, ("203.0.113.9", 5060))
        self.assertTrue(string.disconnected)
        self.assertEqual(transport.limits.count if transport.limits else None, 4)

    def test_refusedReleasesNothing(self) -> None:
        """
        A refused connection's loss does not free a place it never had.
        """
        transport, _, _ = limitedTransport(maxConnectionsPerAddress=1)
        accept(transport)
        refused, _ = accept(transport, ("198.51.100.7", 40001))
        lose(refused)
        assert transport.limits is not None
        self.assertEqual(transport.limits.countFor("198.51.100.7"), 1)

    def test_listenerConnectionsAreCounted(self) -> None:
        """
        The listeners' factories build counted (accepted) connections;
        the library default has no caps.
        """
        transport, reactor, _ = limitedTransport()
        transport.listenTCP(5060)
        factory = reactor.tcpServers[0][1]
        connection = factory.buildProtocol(IPv4Address("TCP", *PEER))
        self.assertTrue(connection.accepted)
        self.assertIsNone(SIPTransport(MemoryReactorClock()).limits)


class CleanupTests(SynchronousTestCase):
    """
    Memory comes back: a closed connection leaves no timer, no dialog, no
    count and no reference behind.
    """

    def test_nothingKept(self) -> None:
        """
        After a paused, mid-message connection with a dialog is lost, the
        reactor holds no call, the transport no connection, dialog or
        count, and the connection object is garbage.
        """
        transport, reactor, user = limitedTransport()
        connection, string = accept(transport)
        acceptInvite(transport, connection, user)
        transport.dialogStarted(CALL_ID, user.received[-1][1])
        connection.dataReceived(b"INFO sip:x SIP/2.0\r\n")
        connection.pauseProducing()
        connection.close()
        self.assertNotEqual(reactor.getDelayedCalls(), [])
        lose(connection)
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertEqual(transport._connections, {})
        self.assertEqual(transport._dialogConnections, {})
        assert transport.limits is not None
        self.assertEqual(transport.limits.count, 0)
        reference = weakref.ref(connection)
        del connection, string
        user.received.clear()
        gc.collect()
        self.assertIsNone(reference())

    def test_stopListeningClosesGracefully(self) -> None:
        """
        L{SIPTransport.stopListening} closes each connection once (its
        producer unregistered, so that TLS ones close too).
        """
        transport, _, _ = limitedTransport()
        connection, string = accept(transport)
        transport.stopListening()
        self.assertTrue(string.disconnecting)
        self.assertIsNone(string.producer)

    def test_parseErrorStillAnsweredThenClosed(self) -> None:
        """
        A fatal framing error is answered, then the connection closed, as
        before the limits (the producer is unregistered first).
        """
        transport, _, _ = limitedTransport()
        connection, string = accept(transport)
        connection.dataReceived(INVITE.replace(b"Content-Length: 0\r\n", b""))
        [response] = SIPStreamParser().feed(string.value())
        assert isinstance(response, SIPResponse)
        self.assertEqual(response.status, 400)
        self.assertTrue(string.disconnecting)
