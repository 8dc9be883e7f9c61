# -*- test-case-name: tests.msrp.test_endpoint,tests.msrp.test_tls,tests.msrp.test_relayendpoint -*-
"""
The active side of L{stoxgw.msrp.endpoint.MSRPEndpoint}: connecting a
session to the first URI of the peer's path (R-155, R-157), sharing one
connection between sessions that go to the same peer authority (RFC 4975
section 5.4), checking the peer of an outgoing C{msrps} connection (its
SDP C{a=fingerprint} or its SubjectAltName, R-160, R-161) before any
session is bound to it, and failing the sessions that waited for a
connection that could not be made.

L{Connecting} is a base of L{MSRPEndpoint}, which sets the attributes it
declares and owns the tables they name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IAddress, IConnector
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from stoxgw._util import failureOf
from stoxgw.msrp.protocol import MSRPConnection
from stoxgw.msrp.relay import RelayAuthorized
from stoxgw.msrp.session import MSRPSession, SessionState
from stoxgw.msrp.tls import (
    MSRPTLS,
    Fingerprint,
    FingerprintMismatch,
    SubjectAltNameMismatch,
    TLSMSRPConnection,
    TLSVerificationError,
)
from stoxgw.msrp.uri import MSRPURI

if TYPE_CHECKING:  # pragma: no cover
    from stoxgw.msrp.relayclient import RelayClient

__all__ = ["DEFAULT_PORT", "ConnectionKey", "Connecting", "OutgoingFactory"]

DEFAULT_PORT = 2855
"""
The MSRP port used when a URI has none (RFC 4975 section 15.4).
"""

#: The connection-sharing key: scheme, host, port, and the SDP fingerprint
#: the connection was checked against (connections checked differently are
#: never shared).
ConnectionKey = tuple[str, str, int, str | None]


class OutgoingFactory(ClientFactory):
    """
    Builds the connection for one outgoing attempt and remembers which
    sessions wait for it.

    @ivar key: The connection-sharing key.
    @ivar uri: The URI connected to.
    @ivar fingerprint: The SDP fingerprint the peer certificate must have.
    @ivar waiting: The sessions to bind once connected (and verified), with
        their L{Deferred}s.
    @ivar connection: The connection once built.
    """

    def __init__(
        self,
        endpoint: Connecting,
        key: ConnectionKey,
        uri: MSRPURI,
        fingerprint: Fingerprint | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.key = key
        self.uri = uri
        self.fingerprint = fingerprint
        self.waiting: list[tuple[MSRPSession, Deferred[MSRPSession]]] = []
        self.connection: MSRPConnection | None = None

    @property
    def authority(self) -> ConnectionKey:
        """
        The connection-sharing key (older name).
        """
        return self.key

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        """
        @return: A new L{MSRPConnection}.
        """
        connection = self.endpoint._buildConnection(self.uri.secure)
        connection.factory = self
        self.connection = connection
        return connection

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        """
        Fail the waiting sessions.
        """
        self.endpoint._connectFailed(self, reason)


class Connecting:
    """
    The active side of L{MSRPEndpoint} (which sets the attributes declared
    here): connecting sessions, sharing and verifying outgoing connections.
    """

    _log: Logger
    reactor: Any
    tls: MSRPTLS | None
    shareConnections: bool
    connectTimeout: float
    _outgoing: dict[ConnectionKey, MSRPConnection]
    _connecting: dict[ConnectionKey, OutgoingFactory]
    _fingerprints: dict[MSRPURI, Fingerprint]
    _relayed: dict[MSRPURI, RelayAuthorized]
    _clientTLS: MSRPTLS | None
    _relay: RelayClient | None

    if TYPE_CHECKING:  # pragma: no cover

        def _buildConnection(self, secure: bool = False) -> MSRPConnection:
            """
            See L{MSRPEndpoint._buildConnection}.
            """

    @staticmethod
    def _fingerprint(value: Fingerprint | str | None) -> Fingerprint | None:
        """
        Parse an SDP fingerprint value if given as text.
        """
        if value is None or isinstance(value, Fingerprint):
            return value
        return Fingerprint.fromSDP(value)

    @staticmethod
    def _abort(connection: MSRPConnection) -> None:
        """
        Tear a connection down at once (no further data either way).
        """
        transport: Any = connection.transport
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            connection.disconnect()

    @staticmethod
    def _authority(uri: MSRPURI) -> tuple[str, str, int]:
        """
        The authority of a URI: scheme, host, port.
        """
        scheme, host, port, _, _ = uri.comparisonKey()
        return (scheme, host, DEFAULT_PORT if port is None else port)

    def connectSession(
        self,
        session: MSRPSession,
        remotePath: Sequence[MSRPURI],
        fingerprint: Fingerprint | str | None = None,
    ) -> Deferred[MSRPSession]:
        """
        Connect the active side: to the first URI of C{remotePath} (R-155),
        reusing a connection to the same authority if there is one, or,
        with a relay, over the relay connection (R-166); the session is
        bound and sends its bodiless SEND (R-157).

        @param session: A session of this endpoint, waiting.
        @param remotePath: The peer's C{a=path}.
        @param fingerprint: The peer's SDP C{a=fingerprint}, if any: the
            TLS certificate must have it (R-161); without it an C{msrps}
            peer's certificate must be valid for the URI host (R-160).
        @return: A L{Deferred} firing with the session once bound, or
            failing with the connection or verification error (the
            session fails too).
        """
        if not remotePath:
            return fail(ValueError("empty remote path"))
        if session.state is not SessionState.WAITING:
            return fail(ValueError(f"session is {session.state.value}"))
        try:
            expected = self._fingerprint(fingerprint)
        except ValueError as e:
            return fail(e)
        if self._relay is not None and session.localURI in self._relayed:
            return self._relay.connectSession(session, remotePath)
        if expected is not None:
            self._fingerprints[session.localURI] = expected
        session.updatePeer(remotePath=remotePath)
        target = remotePath[0]
        scheme, host, port = self._authority(target)
        key: ConnectionKey = (
            scheme,
            host,
            port,
            expected.toSDP() if expected is not None and target.secure else None,
        )
        if self.shareConnections:
            connection = self._outgoing.get(key)
            if connection is not None and connection.open:
                session.bind(connection, True)
                return succeed(session)
            pending = self._connecting.get(key)
            if pending is not None:
                d: Deferred[MSRPSession] = Deferred()
                pending.waiting.append((session, d))
                return d
        factory = OutgoingFactory(self, key, target, expected if target.secure else None)
        d = Deferred()
        factory.waiting.append((session, d))
        if self.shareConnections:
            self._connecting[key] = factory
        self._log.info(
            "Connecting MSRP session {msrpSessionID} to {peer}",
            msrpSessionID=str(session.localURI),
            peer=str(target),
        )
        self._connect(target, factory)
        return d

    def _connect(self, uri: MSRPURI, factory: ClientFactory) -> None:
        """
        Open a connection: TLS for C{msrps} (R-150, R-160), else TCP.

        @param uri: The URI to connect to.
        @param factory: The factory (its C{fingerprint}, if any, selects
            the fingerprint check instead of the SubjectAltName check).
        """
        port = DEFAULT_PORT if uri.port is None else uri.port
        if not uri.secure:
            self.reactor.connectTCP(
                uri.host, port, factory, timeout=self.connectTimeout
            )
            return
        tls = self.tls
        if tls is None:
            if self._clientTLS is None:
                self._clientTLS = MSRPTLS()
            tls = self._clientTLS
        creator = tls.clientCreator(uri.host, getattr(factory, "fingerprint", None))
        self.reactor.connectSSL(
            uri.host, port, factory, creator, timeout=self.connectTimeout
        )

    def _forgetFactory(self, factory: OutgoingFactory) -> None:
        """
        Stop sharing a connection attempt.
        """
        if self._connecting.get(factory.key) is factory:
            del self._connecting[factory.key]

    def _failWaiting(self, factory: OutgoingFactory, reason: Failure) -> None:
        """
        Fail the sessions waiting for an attempt.
        """
        self._forgetFactory(factory)
        waiting, factory.waiting = factory.waiting, []
        for session, d in waiting:
            session.connectionFailed(reason)
            d.errback(reason)

    def _connectFailed(self, factory: OutgoingFactory, reason: Failure) -> None:
        """
        An outgoing connection attempt failed: fail its sessions.
        """
        self._log.warn(
            "MSRP connection to {peer} failed: {error}",
            peer=f"{factory.key[1]}:{factory.key[2]}",
            error=reason.getErrorMessage(),
        )
        self._failWaiting(factory, reason)

    def _connectionReady(self, connection: MSRPConnection) -> None:
        """
        A connection can carry sessions: verify its peer (R-161) and bind
        the waiting sessions, or start the relay AUTH.
        """
        if self._relay is not None and self._relay.owns(connection):
            self._relay.connectionReady(connection)
            return
        factory = getattr(connection, "factory", None)
        if not isinstance(factory, OutgoingFactory):
            return
        self._forgetFactory(factory)
        if factory.fingerprint is not None:
            certificate = (
                connection.peerCertificate
                if isinstance(connection, TLSMSRPConnection)
                else None
            )
            try:
                factory.fingerprint.check(certificate, str(factory.uri))
            except FingerprintMismatch as e:
                self._log.warn(
                    "MSRP connection to {peer} refused: {error}",
                    peer=str(factory.uri),
                    error=e,
                )
                self._failWaiting(factory, failureOf(e))
                self._abort(connection)
                return
        if self.shareConnections:
            self._outgoing[factory.key] = connection
        waiting, factory.waiting = factory.waiting, []
        for session, d in waiting:
            if session.state is not SessionState.WAITING:
                d.errback(ValueError(f"session is {session.state.value}"))
                continue
            session.bind(connection, True)
            d.callback(session)

    @staticmethod
    def _lossReason(connection: MSRPConnection, peer: str) -> Failure:
        """
        Why a connection ended before it could be used, clearly (a TLS
        verification failure names the certificate problem).
        """
        lost = getattr(connection, "lostReason", None)
        if lost is None:
            return failureOf(ConnectionError(f"connection to {peer} lost"))
        error = lost.value
        if isinstance(error, TLSVerificationError):
            return lost  # type: ignore[no-any-return]
        name = type(error).__name__
        if name == "VerificationError":  # service_identity, from R-160 checks
            return failureOf(
                SubjectAltNameMismatch(
                    f"TLS certificate of {peer} does not match its host: {error}"
                )
            )
        if isinstance(connection, TLSMSRPConnection) and not connection.secured:
            return failureOf(
                TLSVerificationError(
                    f"TLS handshake with {peer} failed: {lost.getErrorMessage()}"
                )
            )
        return lost  # type: ignore[no-any-return]
