# -*- test-case-name: tests.msrp.test_relayendpoint -*-
"""
Tests for L{stoxgw.msrp.relayconnection} and the relay part of
L{stoxgw.msrp.endpoint} (RFC 4976): the AUTH exchange over a connection,
the refresh timer, and sessions routed through the relay (no sockets:
L{MemoryReactorClock} and string transports).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import ClientFactory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.msrp.builders import buildRequest, buildResponse
from stoxgw.msrp.endpoint import MSRPEndpoint, RelayNotReady
from stoxgw.msrp.message import MSRPMethod, MSRPRequest, MSRPResponse
from stoxgw.msrp.protocol import MSRPConnection
from stoxgw.msrp.relay import (
    RelayAuthorized,
    RelayCredentialsRejected,
    RelayForbidden,
)
from stoxgw.msrp.relayauth import RelayAuthenticator
from stoxgw.msrp.relayconnection import RelayLink, RelayLost, RelayTimeout
from stoxgw.msrp.session import SessionState
from stoxgw.msrp.uri import MSRPURI
from tests.msrp.test_protocol import written
from tests.msrp.test_session import Handler

RELAY = MSRPURI.fromString("msrp://relay.example.net:2855;tcp")
OWN = MSRPURI.fromString("msrp://10.0.0.1:2855/authuri;tcp")
CHALLENGE = 'Digest realm="relay.example.net", nonce="n0nce", qop="auth", algorithm=MD5'
PEER = MSRPURI.fromString("msrp://192.0.2.7:7777/peersession;tcp")
PEER_RELAY = MSRPURI.fromString("msrp://relay2.example.org:2855/theirs;tcp")


def answer(
    request: MSRPRequest, code: int, headers: list[tuple[str, str]] | None = None
) -> bytes:
    """
    The relay's response to an AUTH (To-Path = its From-Path, From-Path =
    the relay).
    """
    comment = {200: "OK", 401: "Unauthorized", 403: "Forbidden"}.get(code, "Error")
    return buildResponse(
        request.transactionID,
        code,
        comment,
        request.fromPath,
        request.toPath[-1:],
        headers or [],
    ).serialize()


def usePath(session: str) -> MSRPURI:
    """
    A Use-Path URI of the relay.
    """
    return MSRPURI("msrp", "relay.example.net", 2855, session, "tcp")


def authorize(
    connection: MSRPConnection,
    transport: StringTransport,
    session: str = "u1",
    expires: int = 600,
) -> MSRPRequest:
    """
    Answer the pending AUTH with a challenge, then the answer with 200.

    @return: The AUTH with credentials.
    """
    [first] = written(transport)
    assert isinstance(first, MSRPRequest)
    connection.dataReceived(answer(first, 401, [("WWW-Authenticate", CHALLENGE)]))
    [second] = written(transport)
    assert isinstance(second, MSRPRequest)
    connection.dataReceived(
        answer(
            second,
            200,
            [("Use-Path", str(usePath(session))), ("Expires", str(expires))],
        )
    )
    return second


class RelayLinkTests(SynchronousTestCase):
    """
    L{RelayLink}: AUTH over an L{MSRPConnection} (RFC 4976 sections 5.1,
    4.6; R-168).
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.connection = MSRPConnection()
        self.transport = StringTransport()
        self.connection.makeConnection(self.transport)
        self.authorized: list[RelayAuthorized] = []
        self.failures: list[Failure] = []
        self.events: list[dict[str, Any]] = []
        self.patch(RelayLink, "_log", Logger(observer=self.events.append))
        self.link = RelayLink(
            self.connection,
            RelayAuthenticator(RELAY, OWN, "alice", "secret"),
            self.clock,
            timeout=10,
            onAuthorized=self.authorized.append,
            onFailed=self.failures.append,
        )

    def test_digestExchange(self) -> None:
        """
        RFC 4976 section 5.1: AUTH, 401 challenge, AUTH with digest
        credentials, 200 with Use-Path and Expires; the link keeps the
        outcome and no timer but the refresh is left.
        """
        d = self.link.start()
        second = authorize(self.connection, self.transport)
        outcome = self.successResultOf(d)
        self.assertEqual(outcome.usePath, (usePath("u1"),))
        self.assertEqual(outcome.expires, 600)
        self.assertIsNotNone(second.authorization)
        self.assertEqual(second.toPath, (RELAY,))
        self.assertEqual(second.fromPath, (OWN,))
        self.assertIs(self.link.authorized, outcome)
        self.assertTrue(self.link.valid())
        self.assertEqual(self.authorized, [outcome])
        self.assertEqual(self.connection.pendingTransactions, 0)
        [refresh] = self.clock.getDelayedCalls()
        self.assertEqual(refresh.getTime(), 570.0)
        self.assertEqual(self.connection.sessions, {OWN: self.link})
        self.assertFalse(self.connection.closeWhenIdle)

    def test_refresh(self) -> None:
        """
        RFC 4976 section 4.6: AUTH again before expiry; the new Use-Path
        replaces the old one and the next refresh is scheduled.
        """
        self.link.start()
        authorize(self.connection, self.transport, "u1", 600)
        self.clock.advance(570)
        authorize(self.connection, self.transport, "u2", 120)
        self.assertEqual(self.link.authorized.usePath, (usePath("u2"),))  # type: ignore[union-attr]
        self.assertEqual(len(self.authorized), 2)
        [refresh] = self.clock.getDelayedCalls()
        self.assertEqual(refresh.getTime(), 570.0 + 90.0)
        self.assertEqual(self.failures, [])

    def test_expiry(self) -> None:
        """
        Without a successful refresh the Use-Path is no longer valid after
        Expires.
        """
        self.link.start()
        authorize(self.connection, self.transport, "u1", 100)
        self.clock.advance(99)
        self.assertTrue(self.link.valid())
        self.transport.clear()
        self.clock.advance(1)
        self.assertFalse(self.link.valid())

    def test_forbidden(self) -> None:
        """
        R-168: a 403 fails the exchange with L{RelayForbidden} and an error
        log line naming the relay and the config keys.
        """
        d = self.link.start()
        [first] = written(self.transport)
        assert isinstance(first, MSRPRequest)
        self.connection.dataReceived(
            answer(first, 401, [("WWW-Authenticate", CHALLENGE)])
        )
        [second] = written(self.transport)
        assert isinstance(second, MSRPRequest)
        self.connection.dataReceived(answer(second, 403))
        failure = self.failureResultOf(d, RelayForbidden)
        self.assertEqual(failure.value.code, 403)
        [event] = [e for e in self.events if e["log_level"].name == "error"]
        self.assertEqual(event["peer"], str(RELAY))
        self.assertEqual(event["configKeys"], "[msrp] relay_username/relay_password")
        self.assertEqual(event["username"], "alice")
        self.assertNotIn("secret", repr(event))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_credentialsRejected(self) -> None:
        """
        A second 401 without stale=true: L{RelayCredentialsRejected}.
        """
        d = self.link.start()
        for _ in range(2):
            [request] = written(self.transport)
            assert isinstance(request, MSRPRequest)
            self.connection.dataReceived(
                answer(request, 401, [("WWW-Authenticate", CHALLENGE)])
            )
        self.failureResultOf(d, RelayCredentialsRejected)

    def test_timeout(self) -> None:
        """
        No answer within the timeout: L{RelayTimeout}, the transaction is
        forgotten.
        """
        d = self.link.start()
        self.assertEqual(self.connection.pendingTransactions, 1)
        self.clock.advance(10)
        self.failureResultOf(d, RelayTimeout)
        self.assertEqual(self.connection.pendingTransactions, 0)

    def test_lostDuringExchange(self) -> None:
        """
        The connection is lost during AUTH: L{RelayLost}.
        """
        d = self.link.start()
        self.connection.connectionLost(Failure(ConnectionRefusedError()))
        self.failureResultOf(d, RelayLost)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_lostAfterSuccess(self) -> None:
        """
        A loss after authorization is reported to the owner; the Use-Path
        is gone.
        """
        self.link.start()
        authorize(self.connection, self.transport)
        self.connection.connectionLost(Failure(ConnectionRefusedError()))
        self.assertEqual(len(self.failures), 1)
        self.assertIsNone(self.link.authorized)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_refreshFails(self) -> None:
        """
        A failed refresh is reported to the owner; the old Use-Path stays
        valid until it expires.
        """
        self.link.start()
        authorize(self.connection, self.transport, "u1", 600)
        self.clock.advance(570)
        [request] = written(self.transport)
        assert isinstance(request, MSRPRequest)
        self.connection.dataReceived(answer(request, 403))
        self.assertEqual(len(self.failures), 1)
        self.assertTrue(self.link.valid())

    def test_requestToAuthURI(self) -> None:
        """
        A request addressed to the AUTH URI gets 481.
        """
        self.link.start()
        self.transport.clear()
        request = buildRequest(
            MSRPMethod.SEND,
            (OWN,),
            (RELAY,),
            [("Message-ID", "authmsg0001"), ("Byte-Range", "1-1/1")],
            b"x",
            "text/plain",
        )
        self.connection.dataReceived(request.serialize())
        [response] = written(self.transport)
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.code, 481)

    def test_stop(self) -> None:
        """
        Stopping cancels the refresh and leaves the connection, which then
        closes (no session uses it).
        """
        self.link.start()
        authorize(self.connection, self.transport)
        self.link.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertTrue(self.transport.disconnecting)


class RelayedEndpointTests(SynchronousTestCase):
    """
    L{MSRPEndpoint} configured with a relay (RFC 4976 section 5.1; R-155,
    R-166, R-168).
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.endpoint = MSRPEndpoint(
            self.reactor,
            "10.0.0.1",
            2855,
            transactionTimeout=5,
            relay="msrp://relay.example.net:2855;tcp",
            relayUsername="alice",
            relayPassword="secret",
            relayRetryDelay=30,
        )
        self.events: list[dict[str, Any]] = []
        self.patch(RelayLink, "_log", Logger(observer=self.events.append))

    def connectRelay(self) -> tuple[MSRPConnection, StringTransport]:
        """
        Complete the connection to the relay.
        """
        host, port, factory, _, _ = self.reactor.tcpClients[-1]
        self.assertEqual((host, port), ("relay.example.net", 2855))
        assert isinstance(factory, ClientFactory)
        connection = factory.buildProtocol(IPv4Address("TCP", "192.0.2.1", 2855))
        assert isinstance(connection, MSRPConnection)
        transport = StringTransport()
        connection.makeConnection(transport)
        return connection, transport

    def ready(self) -> tuple[MSRPConnection, StringTransport, RelayAuthorized]:
        """
        Start the relay and authorize.
        """
        d = self.endpoint.startRelay()
        connection, transport = self.connectRelay()
        authorize(connection, transport)
        return connection, transport, self.successResultOf(d)

    def test_notReady(self) -> None:
        """
        Sessions cannot be created before the relay authorized us.
        """
        self.assertRaises(RelayNotReady, self.endpoint.createSession, Handler())

    def test_paths(self) -> None:
        """
        RFC 4976 section 5.1: the SDP path is the Use-Path reversed then
        the session URI; the To-Path is the Use-Path then the peer's path;
        the active session binds to the relay connection (R-166) and its
        bodiless SEND (R-157) goes there.
        """
        connection, transport, authorized = self.ready()
        session = self.endpoint.createSession(Handler())
        self.assertEqual(
            self.endpoint.sdpPath(session), (usePath("u1"), session.localURI)
        )
        self.assertEqual(session.localPath, (session.localURI,))
        d = self.endpoint.connectSession(session, (PEER_RELAY, PEER))
        self.assertIs(self.successResultOf(d), session)
        self.assertIs(session.connection, connection)
        self.assertEqual(session.remotePath, (usePath("u1"), PEER_RELAY, PEER))
        [send] = written(transport)
        assert isinstance(send, MSRPRequest)
        self.assertEqual(send.toPath, (usePath("u1"), PEER_RELAY, PEER))
        self.assertEqual(send.fromPath, (session.localURI,))
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_passiveThroughRelay(self) -> None:
        """
        R-143, R-144: a SEND the relay delivers is dispatched to the
        session its To-Path names, which binds to the relay connection;
        the success REPORT goes back along the From-Path.
        """
        connection, transport, _ = self.ready()
        handler = Handler()
        session = self.endpoint.createSession(handler, remotePath=(PEER,))
        self.assertEqual(session.remotePath, (usePath("u1"), PEER))
        request = buildRequest(
            MSRPMethod.SEND,
            (session.localURI,),
            (usePath("u1"), PEER_RELAY, PEER),
            [
                ("Message-ID", "relaymsg0001"),
                ("Byte-Range", "1-5/5"),
                ("Success-Report", "yes"),
            ],
            b"hello",
            "text/plain",
        )
        connection.dataReceived(request.serialize())
        self.assertIs(session.connection, connection)
        self.assertEqual(handler.messages[0].body, b"hello")
        response, report = written(transport)
        assert isinstance(response, MSRPResponse)
        assert isinstance(report, MSRPRequest)
        self.assertEqual((response.code, response.toPath), (200, (usePath("u1"),)))
        self.assertEqual(report.method, "REPORT")
        self.assertEqual(report.toPath, (usePath("u1"), PEER_RELAY, PEER))

    def test_relayFailureFailsSessions(self) -> None:
        """
        R-168: a 403 from the relay fails L{MSRPEndpoint.startRelay} and
        the sessions waiting for it, with a log line naming the relay and
        the config keys.
        """
        d = self.endpoint.startRelay()
        connection, transport = self.connectRelay()
        [first] = written(transport)
        assert isinstance(first, MSRPRequest)
        connection.dataReceived(answer(first, 403))
        self.failureResultOf(d, RelayForbidden)
        [event] = [e for e in self.events if e["log_level"].name == "error"]
        self.assertIn("relay_username", event["configKeys"])
        self.assertEqual(event["peer"], "msrp://relay.example.net:2855;tcp")
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(self.endpoint.relayAuthorized)

    def test_connectWaitsForRelay(self) -> None:
        """
        A session connected while the relay reconnects waits for it and
        binds once the new AUTH succeeded.
        """
        connection, _, _ = self.ready()
        session = self.endpoint.createSession(Handler())
        connection.connectionLost(Failure(ConnectionRefusedError()))
        d = self.endpoint.connectSession(session, (PEER,))
        self.assertNoResult(d)
        newConnection, newTransport = self.connectRelay()
        authorize(newConnection, newTransport, "u2")
        self.assertIs(self.successResultOf(d), session)
        self.assertIs(session.connection, newConnection)

    def test_connectFailsWithRelay(self) -> None:
        """
        A session waiting for the relay fails when the relay cannot be
        reached.
        """
        connection, _, _ = self.ready()
        session = self.endpoint.createSession(Handler())
        connection.connectionLost(Failure(ConnectionRefusedError()))
        d = self.endpoint.connectSession(session, (PEER,))
        factory = self.reactor.tcpClients[-1][2]
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        self.failureResultOf(d, ConnectionRefusedError)
        self.assertIs(session.state, SessionState.FAILED)

    def test_reconnect(self) -> None:
        """
        When the relay connection is lost, the endpoint connects and
        authenticates again after C{relayRetryDelay}; L{disconnectAll}
        stops that.
        """
        connection, _, _ = self.ready()
        session = self.endpoint.createSession(Handler())
        self.endpoint.connectSession(session, (PEER,))
        connection.connectionLost(Failure(ConnectionRefusedError()))
        self.assertIs(session.state, SessionState.FAILED)
        self.assertIsNone(self.endpoint.relayAuthorized)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.reactor.advance(30)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        newConnection, newTransport = self.connectRelay()
        authorize(newConnection, newTransport, "u2")
        self.assertEqual(
            self.endpoint.relayAuthorized.usePath, (usePath("u2"),)  # type: ignore[union-attr]
        )
        self.endpoint.disconnectAll()
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertTrue(newTransport.disconnecting)

    def test_refreshKeepsSessions(self) -> None:
        """
        RFC 4976 section 4.6: a refresh gives a new Use-Path to new
        sessions; sessions set up before keep theirs.
        """
        connection, transport, _ = self.ready()
        old = self.endpoint.createSession(Handler())
        self.reactor.advance(570)
        authorize(connection, transport, "u2")
        new = self.endpoint.createSession(Handler())
        self.assertEqual(self.endpoint.sdpPath(old)[0], usePath("u1"))
        self.assertEqual(self.endpoint.sdpPath(new)[0], usePath("u2"))
