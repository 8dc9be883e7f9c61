# -*- test-case-name: tests.msrp.test_endpoint -*-
"""
Tests for L{stoxgw.msrp.endpoint}.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import ClientFactory
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stoxgw.msrp.builders import buildRequest
from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.interfaces import IMSRPSessionRegistry
from stoxgw.msrp.message import MSRPRequest, MSRPResponse
from stoxgw.msrp.protocol import MSRPConnection
from stoxgw.msrp.session import MSRPSendError, SessionState
from stoxgw.msrp.uri import MSRPURI
from tests.msrp.test_protocol import written
from tests.msrp.test_session import Handler

PEER = MSRPURI.fromString("msrp://192.0.2.7:7777/peersession;tcp")
PEER2 = MSRPURI.fromString("msrp://192.0.2.7:7777/othersession;tcp")
RELAY = MSRPURI.fromString("msrp://relay.example.net:2855/r1;tcp")


class EndpointTests(SynchronousTestCase):
    """
    Listening, sessions, active and passive connections.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.endpoint = MSRPEndpoint(
            self.reactor, "10.0.0.1", 2855, transactionTimeout=5
        )
        self.endpoint.startListening()

    def accept(self) -> tuple[MSRPConnection, StringTransport]:
        """
        Accept a connection on the listener.
        """
        factory = self.reactor.tcpServers[0][1]
        connection = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40000))
        transport = StringTransport()
        connection.makeConnection(transport)
        return connection, transport

    def complete(self, index: int = -1) -> tuple[MSRPConnection, StringTransport]:
        """
        Complete an outgoing connection attempt.
        """
        factory: ClientFactory = self.reactor.tcpClients[index][2]
        connection = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 7777))
        assert isinstance(connection, MSRPConnection)
        transport = StringTransport()
        connection.makeConnection(transport)
        return connection, transport

    def test_interface(self) -> None:
        """
        The endpoint is the connections' session registry.
        """
        self.assertTrue(verifyObject(IMSRPSessionRegistry, self.endpoint))

    def test_listens(self) -> None:
        """
        It listens on the configured address and port.
        """
        port, _, _, interface = self.reactor.tcpServers[0]
        self.assertEqual((port, interface), (2855, "10.0.0.1"))

    def test_uniqueURIs(self) -> None:
        """
        R-154: every session gets its own hard-to-guess path URI on the
        endpoint's host and port.
        """
        sessions = [self.endpoint.createSession(Handler()) for _ in range(200)]
        ids = {s.localURI.sessionID for s in sessions}
        self.assertEqual(len(ids), 200)
        uri = sessions[0].localURI
        self.assertEqual(
            (uri.scheme, uri.host, uri.port, uri.transport),
            ("msrp", "10.0.0.1", 2855, "tcp"),
        )
        self.assertGreaterEqual(len(uri.sessionID or ""), 20)
        self.assertEqual(sessions[0].transactionTimeout, 5)

    def test_connectFirstURI(self) -> None:
        """
        R-155: the active side connects to the first URI of the path; the
        target is the last one.
        """
        session = self.endpoint.createSession(Handler())
        d = self.endpoint.connectSession(session, (RELAY, PEER))
        host, port = self.reactor.tcpClients[0][:2]
        self.assertEqual((host, port), ("relay.example.net", 2855))
        self.assertNoResult(d)
        _, transport = self.complete()
        self.assertIs(self.successResultOf(d), session)
        [send] = written(transport)
        assert isinstance(send, MSRPRequest)
        self.assertEqual(send.toPath, (RELAY, PEER))

    def test_activeBodilessSend(self) -> None:
        """
        R-157: once connected the session is bound and sends its bodiless
        SEND.
        """
        session = self.endpoint.createSession(Handler())
        self.endpoint.connectSession(session, (PEER,))
        connection, transport = self.complete()
        self.assertIs(session.connection, connection)
        [send] = written(transport)
        assert isinstance(send, MSRPRequest)
        self.assertEqual((send.method, send.body), ("SEND", None))
        self.assertEqual(send.fromPath, (session.localURI,))

    def test_sharedConnection(self) -> None:
        """
        Sessions to the same peer authority share one connection, whether
        it is still being made or already open.
        """
        first = self.endpoint.createSession(Handler())
        second = self.endpoint.createSession(Handler())
        third = self.endpoint.createSession(Handler())
        d1 = self.endpoint.connectSession(first, (PEER,))
        d2 = self.endpoint.connectSession(second, (PEER2,))
        self.assertEqual(len(self.reactor.tcpClients), 1)
        connection, _ = self.complete()
        self.successResultOf(d1)
        self.successResultOf(d2)
        self.successResultOf(self.endpoint.connectSession(third, (PEER2,)))
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.assertEqual(
            set(connection.sessions), {first.localURI, second.localURI, third.localURI}
        )

    def test_connectFailed(self) -> None:
        """
        A failed connection attempt fails the session and its L{Deferred}.
        """
        handler = Handler()
        session = self.endpoint.createSession(handler)
        pending = session.sendMessage("text/plain", b"x")
        d = self.endpoint.connectSession(session, (PEER,))
        factory = self.reactor.tcpClients[0][2]
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        self.failureResultOf(d, ConnectionRefusedError)
        self.failureResultOf(pending, MSRPSendError)
        self.assertEqual(len(handler.failures), 1)
        self.assertIs(session.state, SessionState.FAILED)
        self.assertIsNone(self.endpoint.sessionFor(session.localURI))

    def test_passiveBind(self) -> None:
        """
        R-144: the first request over an accepted connection binds the
        session it names; it is answered and delivered.
        """
        handler = Handler()
        session = self.endpoint.createSession(handler, remotePath=(PEER,))
        connection, transport = self.accept()
        send = buildRequest(
            "SEND",
            (session.localURI,),
            (PEER,),
            [("Message-ID", "m123"), ("Byte-Range", "1-2/2")],
            body=b"hi",
            contentType="text/plain",
        )
        connection.dataReceived(send.serialize())
        self.assertIs(session.connection, connection)
        [response] = written(transport)
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.code, 200)
        self.assertEqual(handler.messages[0].body, b"hi")

    def test_secondConnection506(self) -> None:
        """
        R-144: a session bound to one connection gets 506 on another.
        """
        session = self.endpoint.createSession(Handler(), remotePath=(PEER,))
        send = buildRequest(
            "SEND", (session.localURI,), (PEER,), [("Message-ID", "m123")]
        )
        first, _ = self.accept()
        first.dataReceived(send.serialize())
        second, transport = self.accept()
        second.dataReceived(send.serialize())
        [response] = written(transport)
        self.assertEqual(response.code, 506)  # type: ignore[union-attr]

    def test_unknownSession481(self) -> None:
        """
        R-143: a URI with no session gets 481.
        """
        connection, transport = self.accept()
        uri = MSRPURI("msrp", "10.0.0.1", 2855, "nosuchsession", "tcp")
        connection.dataReceived(
            buildRequest("SEND", (uri,), (PEER,), [("Message-ID", "m123")]).serialize()
        )
        [response] = written(transport)
        self.assertEqual(response.code, 481)  # type: ignore[union-attr]

    def test_closedSessionForgotten(self) -> None:
        """
        A closed session is forgotten: its URI then gets 481.
        """
        session = self.endpoint.createSession(Handler())
        session.close()
        self.assertIsNone(self.endpoint.sessionFor(session.localURI))

    def test_connectionLossFailsSessions(self) -> None:
        """
        R-145: losing a shared connection fails all its sessions; a new
        session to that peer opens a new connection.
        """
        handlers = [Handler(), Handler()]
        sessions = [self.endpoint.createSession(h) for h in handlers]
        for session in sessions:
            self.endpoint.connectSession(session, (PEER,))
        connection, transport = self.complete()
        d = sessions[0].sendMessage("text/plain", b"x")
        connection.connectionLost(Failure(ConnectionError("reset")))
        self.failureResultOf(d, MSRPSendError)
        self.assertEqual([len(h.failures) for h in handlers], [1, 1])
        self.assertEqual(self.endpoint.connections, set())
        self.endpoint.connectSession(self.endpoint.createSession(Handler()), (PEER,))
        self.assertEqual(len(self.reactor.tcpClients), 2)

    def test_roundTrip(self) -> None:
        """
        Two endpoints wired back to back through string transports: the
        bodiless SEND binds the passive side, a message goes across.
        """
        other = MSRPEndpoint(MemoryReactorClock(), "10.0.0.2", 2855)
        handler = Handler()
        passive = other.createSession(handler)
        active = self.endpoint.createSession(Handler(), remotePath=())
        passive.updatePeer(remotePath=active.localPath)
        self.endpoint.connectSession(active, passive.localPath)
        client, clientTransport = self.complete()
        server = other._buildConnection()
        serverTransport = StringTransport()
        server.makeConnection(serverTransport)
        d = active.sendMessage("text/plain", b"across")
        server.dataReceived(clientTransport.value())
        clientTransport.clear()
        self.assertIs(passive.connection, server)
        client.dataReceived(serverTransport.value())
        self.assertEqual(handler.messages[0].body, b"across")
        self.successResultOf(d)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
