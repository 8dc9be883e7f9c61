# -*- test-case-name: tests.msrp.test_endpoint,tests.msrp.test_tls,tests.msrp.test_relayendpoint,tests.msrp.test_connectionlimits -*-
"""
The gateway's MSRP endpoint: one listener, the sessions, the connections.

L{MSRPEndpoint} listens on C{local_ip:port}, creates sessions whose path
URIs carry an unguessable session-id (R-154), connects the active side to
the first URI of the peer's path (R-155, R-157) and shares one connection
between sessions that go to the same peer authority (scheme, host, port;
RFC 4975 section 5.4).  The passive side waits: the first request that
names a session over an accepted connection binds it (R-144).  The
active side (connecting, sharing and verifying outgoing connections) is
L{stoxgw.msrp.connecting.Connecting}, a base of L{MSRPEndpoint}.

TLS (C{msrps}, R-160, R-161): given an L{MSRPTLS} with a certificate, the
endpoint listens with TLS and its URIs are C{msrps://...;tcp}.  An active
session connects with TLS to an C{msrps} peer; with the peer's SDP
C{a=fingerprint} the certificate is compared with it once the handshake
is over, otherwise the chain must be valid and the SubjectAltName must
match the URI host.  Nothing is bound to a TLS connection before that
check; on a mismatch the connection is aborted and the sessions fail with
L{FingerprintMismatch} or L{SubjectAltNameMismatch}.  On the passive side
a fingerprint registered with L{MSRPEndpoint.expectFingerprint} (or
C{createSession(peerFingerprint=...)}) is checked against the client's
certificate when a request binds the session.

Relays (RFC 4976, R-166, R-168): given a relay URI (and the
C{relay_username}/C{relay_password}), L{MSRPEndpoint.startRelay} connects
to the relay and authenticates (L{RelayLink}); from then on every session
uses the relay connection: its SDP path is L{MSRPEndpoint.sdpPath} (the
Use-Path reversed, then its own URI), its To-Path the Use-Path followed by
the peer's SDP path, and requests the relay delivers are dispatched to
sessions by their To-Path URI.

Limits on accepted connections (issue 11; C{docs/limits.md}): at most
C{maxConnectionsPerAddress} per source address and C{maxConnections} in
all (beyond, a new connection is aborted as soon as it is accepted, logged
once per address per minute), and a connection that no request has bound
to a session C{unboundTimeout} seconds after it was accepted is aborted.
RFC 4975 section 5.4 has the active side send a request at once ("the
active endpoint MUST immediately issue a SEND request"), the listening
side wait for that request to learn which session the connection belongs
to, and forbids closing a connection "while there are sessions associated
with it" only; it sets no time, so the default (C{[msrp] unbound_timeout},
30 s) is the response timeout of section 7.1.1, the longest a peer waits
for the answer to that first SEND.  Outgoing connections (bound by this
side at once) and the relay connection are not limited.  Each connection
bounds what it queues for a peer that does not read
(L{MSRPConnection.maxQueuedBytes}).  With no caps or timeout given there
are none (the library's own use); the service passes the C{[msrp]}
configuration.

Reactor-injected (L{IReactorTCP}, L{IReactorSSL} and L{IReactorTime}):
unit tests use L{twisted.internet.testing.MemoryReactorClock}, interop
tests the real reactor.
"""

from __future__ import annotations

import secrets
from typing import Any, Sequence

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IAddress, IListeningPort
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger
from zope.interface import implementer

from stoxgw._util import failureOf
from stoxgw.limits import ConnectionLimits
from stoxgw.msrp.chunks import DEFAULT_CHUNK_SIZE
from stoxgw.msrp.connecting import (
    DEFAULT_PORT,
    ConnectionKey,
    Connecting,
    OutgoingFactory,
)
from stoxgw.msrp.interfaces import IMSRPSessionRegistry
from stoxgw.msrp.parser import DEFAULT_MAX_HEADER_BYTES
from stoxgw.msrp.protocol import DEFAULT_MAX_QUEUED_BYTES, MSRPConnection
from stoxgw.msrp.relay import RelayAuthorized, sdpPathThroughRelays
from stoxgw.msrp.relayclient import RelayClient
from stoxgw.msrp.session import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_TRANSACTION_TIMEOUT,
    MSRPSession,
    IMSRPSessionHandler,
    SessionState,
)
from stoxgw.msrp.tls import (
    MSRPTLS,
    Fingerprint,
    FingerprintMismatch,
    TLSMSRPConnection,
    TLSVerificationError,
)
from stoxgw.msrp.uri import MSRPURI

__all__ = [
    "DEFAULT_PORT",
    "MSRPEndpoint",
    "RelayNotReady",
    "generateSessionID",
]

DEFAULT_RELAY_RETRY_DELAY = 30.0
"""
Seconds before the relay is tried again after its connection was lost or
a refresh failed.
"""


def generateSessionID() -> str:
    """
    Make an unguessable session-id (R-154): 20 URL-safe characters, 120
    bits from L{secrets}.

    @return: The session-id.
    """
    return secrets.token_urlsafe(15)



class RelayNotReady(RuntimeError):
    """
    A session was created before the relay authorized the endpoint (wait
    for L{MSRPEndpoint.startRelay}).
    """


class _ServerFactory(ServerFactory):
    """
    Builds connections for accepted sockets.
    """

    def __init__(self, endpoint: MSRPEndpoint) -> None:
        self.endpoint = endpoint

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        """
        @return: A new L{MSRPConnection} (over TLS when listening with TLS),
            marked as accepted (its C{factory} is this factory).
        """
        connection = self.endpoint._buildConnection(self.endpoint.listensWithTLS)
        connection.factory = self
        return connection


@implementer(IMSRPSessionRegistry)
class _ConnectionRegistry:
    """
    The registry one connection sees: the endpoint, told which connection
    asks (so a session's expected fingerprint can be checked when it binds).
    """

    def __init__(self, endpoint: MSRPEndpoint, connection: MSRPConnection) -> None:
        self.endpoint = endpoint
        self.connection = connection

    def sessionFor(self, uri: MSRPURI) -> MSRPSession | None:
        """
        See L{MSRPEndpoint.sessionFor}, with the binding checks.
        """
        return self.endpoint._sessionForConnection(self.connection, uri)

    def connectionOpened(self, connection: MSRPConnection) -> None:
        """
        See L{MSRPEndpoint.connectionOpened}.
        """
        self.endpoint.connectionOpened(connection)

    def connectionClosed(self, connection: MSRPConnection) -> None:
        """
        See L{MSRPEndpoint.connectionClosed}.
        """
        self.endpoint.connectionClosed(connection)


@implementer(IMSRPSessionRegistry)
class MSRPEndpoint(Connecting):
    """
    The MSRP part of the gateway.

    @ivar reactor: An L{IReactorTCP}, L{IReactorSSL} and L{IReactorTime}
        provider.
    @ivar host: The address (or name) put into path URIs.
    @ivar port: The listening port (the real one once listening on port 0).
    @ivar interface: The address to bind to.
    @ivar scheme: C{msrp}, or C{msrps} when listening with TLS.
    @ivar tls: The TLS material, or L{None}.
    @ivar transactionTimeout: Passed to sessions (R-137); also the AUTH
        timeout.
    @ivar chunkSize: Outgoing chunk size (R-135).
    @ivar maxMessageSize: Largest incoming message (413 beyond).
    @ivar shareConnections: Whether sessions to the same authority share a
        connection.
    @ivar connectTimeout: Seconds for a TCP connection attempt.
    @ivar relayURI: The relay to use (RFC 4976), or L{None}.
    @ivar relayExpires: The C{Expires} to ask the relay for, or L{None}.
    @ivar relayRetryDelay: Seconds before trying the relay again.
    @ivar unboundTimeout: Seconds an accepted connection may stay bound to
        no session, or L{None}.
    @ivar limits: The caps on accepted connections, or L{None}.
    @ivar maxQueuedBytes: See L{MSRPConnection.maxQueuedBytes}.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        interface: str | None = None,
        scheme: str | None = None,
        tls: MSRPTLS | None = None,
        transactionTimeout: float = DEFAULT_TRANSACTION_TIMEOUT,
        chunkSize: int = DEFAULT_CHUNK_SIZE,
        maxMessageSize: int = DEFAULT_MAX_MESSAGE_SIZE,
        shareConnections: bool = True,
        connectTimeout: float = 30.0,
        relay: MSRPURI | str | None = None,
        relayUsername: str | None = None,
        relayPassword: str | None = None,
        relayExpires: int | None = None,
        relayRetryDelay: float = DEFAULT_RELAY_RETRY_DELAY,
        unboundTimeout: float | None = None,
        maxConnectionsPerAddress: int | None = None,
        maxConnections: int | None = None,
        maxQueuedBytes: int = DEFAULT_MAX_QUEUED_BYTES,
    ) -> None:
        """
        @param reactor: See L{reactor} (typed loosely: mypy cannot check
            zope interfaces without its plugin).
        @param scheme: By default C{msrps} if C{tls} has a certificate,
            else C{msrp}.
        @param relay: See L{relayURI} (a URI or its text).
        @param relayUsername: The C{[msrp] relay_username}.
        @param relayPassword: The C{[msrp] relay_password}.
        @param unboundTimeout: See L{unboundTimeout} (C{[msrp]
            unbound_timeout}).
        @param maxConnectionsPerAddress: The most accepted connections from
            one source address (C{[msrp] max_connections_per_address}), or
            L{None} for no cap.
        @param maxConnections: The most accepted connections in all
            (C{[msrp] max_connections}), or L{None} for no cap.
        @param maxQueuedBytes: See L{maxQueuedBytes} (C{[msrp]
            max_output_bytes}).
        """
        self.reactor = reactor
        self.host = host
        self.port = port
        self.interface = host if interface is None else interface
        self.tls = tls
        if scheme is None:
            scheme = "msrps" if tls is not None and tls.certificate else "msrp"
        self.scheme = scheme
        self.transactionTimeout = transactionTimeout
        self.chunkSize = chunkSize
        self.maxMessageSize = maxMessageSize
        self.shareConnections = shareConnections
        self.connectTimeout = connectTimeout
        if isinstance(relay, str):
            relay = MSRPURI.fromString(relay)
        self.relayURI: MSRPURI | None = relay
        self.relayExpires = relayExpires
        self.relayRetryDelay = relayRetryDelay
        self._listeningPort: IListeningPort | None = None
        self._sessions: dict[MSRPURI, MSRPSession] = {}
        self._connections: set[MSRPConnection] = set()
        self._outgoing: dict[ConnectionKey, MSRPConnection] = {}
        self._connecting: dict[ConnectionKey, OutgoingFactory] = {}
        self._fingerprints: dict[MSRPURI, Fingerprint] = {}
        self._relayed: dict[MSRPURI, RelayAuthorized] = {}
        self._clientTLS: MSRPTLS | None = None
        self._relay: RelayClient | None = None
        if relay is not None:
            self._relay = RelayClient(
                self, relay, relayUsername, relayPassword, self._connect, self._buildConnection
            )
        self.unboundTimeout = unboundTimeout
        self.maxQueuedBytes = maxQueuedBytes
        self.limits = ConnectionLimits.ifAny(maxConnectionsPerAddress, maxConnections)
        # Accepted connections: their source host if counted by the caps.
        self._admitted: dict[MSRPConnection, str] = {}
        # Accepted connections not bound yet -> their timer.
        self._unbound: dict[MSRPConnection, Any] = {}

    @property
    def listensWithTLS(self) -> bool:
        """
        Whether the listener (and so every accepted connection) uses TLS.
        """
        return self.scheme.lower() == "msrps"

    # -- listening ---------------------------------------------------------

    def startListening(self) -> IListeningPort:
        """
        Listen for MSRP connections; with port 0 the real port is used in
        path URIs from then on.

        @return: The listening port.
        """
        port = self._listen(_ServerFactory(self))
        self._listeningPort = port
        actual = port.getHost()
        if self.port == 0 and hasattr(actual, "port"):
            self.port = actual.port
        self._log.info(
            "MSRP listening on {interface}:{port} ({scheme})",
            interface=self.interface,
            port=self.port,
            scheme=self.scheme,
        )
        return port

    def _listen(self, factory: ServerFactory) -> IListeningPort:
        """
        Start the listener: TLS for C{msrps} (R-160), else TCP.

        @param factory: The factory.
        @return: The port.
        @raise ValueError: For C{msrps} without a certificate.
        """
        if self.listensWithTLS:
            if self.tls is None:
                raise ValueError("msrps needs a certificate and key")
            tlsPort: IListeningPort = self.reactor.listenSSL(
                self.port,
                factory,
                self.tls.serverContextFactory(),
                interface=self.interface,
            )
            return tlsPort
        port: IListeningPort = self.reactor.listenTCP(
            self.port, factory, interface=self.interface
        )
        return port

    def stopListening(self) -> Deferred[None]:
        """
        Stop accepting connections (existing ones stay).

        @return: A L{Deferred} that fires when the port is closed.
        """
        port, self._listeningPort = self._listeningPort, None
        if port is None:
            return succeed(None)
        result: Deferred[None] | None = port.stopListening()
        return succeed(None) if result is None else result

    def disconnectAll(self) -> None:
        """
        Stop using the relay, close every connection (their sessions fail)
        and close the sessions that wait for one.
        """
        self.stopRelay()
        for connection in list(self._connections):
            connection.disconnect()
        for session in list(self._sessions.values()):
            if session.state is SessionState.WAITING:
                session.close()

    # -- sessions ----------------------------------------------------------

    @property
    def sessions(self) -> dict[MSRPURI, MSRPSession]:
        """
        The live sessions by local URI (a copy).
        """
        return dict(self._sessions)

    @property
    def connections(self) -> set[MSRPConnection]:
        """
        The open connections (a copy).
        """
        return set(self._connections)

    def newLocalURI(self) -> MSRPURI:
        """
        Make a fresh, unguessable path URI for a session (R-154).

        @return: C{msrp://host:port/<session-id>;tcp} (C{msrps} with TLS).
        """
        while True:
            uri = MSRPURI(self.scheme, self.host, self.port, generateSessionID(), "tcp")
            if uri not in self._sessions:
                return uri

    def createSession(
        self,
        handler: IMSRPSessionHandler,
        *,
        peerFingerprint: Fingerprint | str | None = None,
        **options: Any,
    ) -> MSRPSession:
        """
        Create a session with a new local URI.

        With a relay, the session takes the relay's current Use-Path: its
        C{remotePath} option is the peer's SDP path and becomes the To-Path
        through the relay; L{sdpPath} gives the path to advertise.

        @param handler: The L{IMSRPSessionHandler} of the layer above.
        @param peerFingerprint: The peer's SDP C{a=fingerprint} value, if
            any (see L{expectFingerprint}).
        @param options: Keyword arguments for L{MSRPSession} (remotePath,
            acceptTypes, peerAcceptTypes, peerMaxSize, ...); the endpoint's
            chunk size, timeout and size limit are the defaults.
        @return: The session, waiting for a connection.
        @raise RelayNotReady: With a relay that has not authorized us (yet,
            or any more).
        @raise ValueError: For a malformed fingerprint.
        """
        authorized: RelayAuthorized | None = None
        if self._relay is not None:
            authorized = self._relay.authorized
            if authorized is None:
                raise RelayNotReady(
                    f"the MSRP relay {self._relay.uri} has not authorized us"
                )
            remotePath = options.get("remotePath")
            if remotePath:
                options["remotePath"] = authorized.toPath(remotePath)
        fingerprint = self._fingerprint(peerFingerprint)
        options.setdefault("chunkSize", self.chunkSize)
        options.setdefault("transactionTimeout", self.transactionTimeout)
        options.setdefault("maxMessageSize", self.maxMessageSize)
        uri = self.newLocalURI()
        session = MSRPSession(
            uri, handler, self.reactor, onEnd=self._sessionEnded, **options
        )
        self._sessions[uri] = session
        if authorized is not None:
            self._relayed[uri] = authorized
        if fingerprint is not None:
            self._fingerprints[uri] = fingerprint
        return session

    def expectFingerprint(
        self, session: MSRPSession, fingerprint: Fingerprint | str | None
    ) -> None:
        """
        Register the peer's SDP C{a=fingerprint} for a session (R-161): a
        connection that binds it must present a certificate with that
        fingerprint, or the session fails.

        @param session: A session of this endpoint.
        @param fingerprint: The value (C{"sha-256 AB:..."}), or L{None} to
            forget it.
        """
        parsed = self._fingerprint(fingerprint)
        if parsed is None:
            self._fingerprints.pop(session.localURI, None)
        else:
            self._fingerprints[session.localURI] = parsed

    def sdpPath(self, session: MSRPSession) -> tuple[MSRPURI, ...]:
        """
        The C{a=path} to advertise for a session (R-154; with a relay the
        Use-Path reversed, then the session's URI, RFC 4976 section 5.1).

        @param session: A session of this endpoint.
        @return: The path URIs.
        """
        authorized = self._relayed.get(session.localURI)
        if authorized is None:
            return session.localPath
        return sdpPathThroughRelays(authorized.usePath, session.localURI)

    def setRemotePath(
        self, session: MSRPSession, remotePath: Sequence[MSRPURI]
    ) -> None:
        """
        Take the peer's SDP path (answer, re-offer: R-156), through the
        relay if the session uses one.

        @param session: A session of this endpoint.
        @param remotePath: The peer's C{a=path}.
        """
        authorized = self._relayed.get(session.localURI)
        if authorized is not None and remotePath:
            remotePath = authorized.toPath(remotePath)
        session.updatePeer(remotePath=remotePath)

    def _sessionEnded(self, session: MSRPSession) -> None:
        """
        Forget a failed or closed session.
        """
        uri = session.localURI
        if self._sessions.get(uri) is session:
            del self._sessions[uri]
            self._fingerprints.pop(uri, None)
            self._relayed.pop(uri, None)

    def sessionFor(self, uri: MSRPURI) -> MSRPSession | None:
        """
        Look up a session by its local URI (R-143, R-144).

        @param uri: The URI.
        @return: The session, or L{None}.
        """
        return self._sessions.get(uri)

    def _sessionForConnection(
        self, connection: MSRPConnection, uri: MSRPURI
    ) -> MSRPSession | None:
        """
        Look up a session a request on C{connection} is about to bind, and
        check the connection's certificate against the fingerprint expected
        for it (R-161).  A mismatch fails the session (the request gets
        481) and aborts the connection unless other sessions use it.

        @param connection: The connection the request came on.
        @param uri: The To-Path URI.
        @return: The session, or L{None}.
        """
        session = self._sessions.get(uri)
        if session is None or session.connection is not None:
            return session
        if self._relay is not None and self._relay.owns(connection):
            # The TLS peer is the relay, not the session's peer.
            return session
        fingerprint = self._fingerprints.get(uri)
        if fingerprint is None:
            return session
        try:
            if not isinstance(connection, TLSMSRPConnection):
                raise FingerprintMismatch(
                    f"{connection.peer} did not use TLS; SDP fingerprint {fingerprint}"
                )
            fingerprint.check(connection.peerCertificate, connection.peer)
        except TLSVerificationError as e:
            self._log.warn(
                "Refusing MSRP connection from {peer} for session"
                " {msrpSessionID}: {error}",
                peer=connection.peer,
                msrpSessionID=str(uri),
                error=e,
            )
            session.connectionFailed(failureOf(e))
            if not connection.sessions:
                self._abort(connection)
            return None
        return session

    # -- connections -------------------------------------------------------

    def _buildConnection(self, secure: bool = False) -> MSRPConnection:
        """
        Make a connection bound to this endpoint.

        @param secure: Whether it runs over TLS (then it reports the end of
            the handshake).
        """
        cls = TLSMSRPConnection if secure else MSRPConnection
        connection = cls(
            registry=None,
            chunkSize=self.chunkSize,
            maxChunkBytes=self.maxMessageSize,
            maxHeaderBytes=DEFAULT_MAX_HEADER_BYTES,
            maxQueuedBytes=self.maxQueuedBytes,
        )
        connection.clock = self.reactor
        connection.registry = _ConnectionRegistry(self, connection)
        if isinstance(connection, TLSMSRPConnection):
            connection.onSecured = self._connectionSecured
        return connection

    def connectionOpened(self, connection: MSRPConnection) -> None:
        """
        Track a new connection; bind the sessions that waited for it (for
        TLS, once the handshake is over and the peer verified).  An
        accepted one is refused beyond the connection caps, and gets
        C{unboundTimeout} seconds to be bound.
        """
        self._connections.add(connection)
        if isinstance(getattr(connection, "factory", None), _ServerFactory):
            if not self._admit(connection):
                connection.abort()
                return
            if self.unboundTimeout is not None:
                self._unbound[connection] = self.reactor.callLater(
                    self.unboundTimeout, self._unboundExpired, connection
                )
        if isinstance(connection, TLSMSRPConnection) and not connection.secured:
            return
        self._connectionReady(connection)

    def _connectionSecured(self, connection: TLSMSRPConnection) -> None:
        """
        The TLS handshake of a connection is over.
        """
        if not connection.open:
            return
        self._connectionReady(connection)

    def connectionClosed(self, connection: MSRPConnection) -> None:
        """
        Forget a lost connection (its timer, its place under the caps);
        sessions still waiting for it (a TLS handshake or verification
        failed) fail.
        """
        self._connections.discard(connection)
        timer = self._unbound.pop(connection, None)
        if timer is not None and timer.active():
            timer.cancel()
        host = self._admitted.pop(connection, None)
        if host is not None and self.limits is not None:
            self.limits.release(host)
        for key, known in list(self._outgoing.items()):
            if known is connection:
                del self._outgoing[key]
        factory = getattr(connection, "factory", None)
        if isinstance(factory, OutgoingFactory) and factory.waiting:
            reason = self._lossReason(connection, str(factory.uri))
            self._log.warn(
                "MSRP connection to {peer} failed: {error}",
                peer=str(factory.uri),
                error=reason.getErrorMessage(),
            )
            self._failWaiting(factory, reason)
        elif (
            self._relay is not None
            and self._relay.owns(connection)
            and self._relay.link is None
        ):
            reason = self._lossReason(connection, str(self._relay.uri))
            self._relay.connectFailed(factory, reason)

    def _admit(self, connection: MSRPConnection) -> bool:
        """
        Count an accepted MSRP connection under the caps, its address kept
        for the release, or refuse it (L{ConnectionLimits.admitOrLog}: one
        log line per source address per minute).

        @return: Whether it may stay.
        """
        limits = self.limits
        if limits is None:
            return True
        transport: Any = connection.transport
        host = str(getattr(transport.getPeer(), "host", connection.peer))
        if not limits.admitOrLog(
            host,
            self.reactor.seconds(),
            self._log,
            "Refused MSRP connection from {peer}",
            peer=connection.peer,
        ):
            return False
        self._admitted[connection] = host
        return True

    def _unboundExpired(self, connection: MSRPConnection) -> None:
        """
        C{unboundTimeout} seconds after it was accepted: abort the
        connection unless a request bound it to a session.
        """
        self._unbound.pop(connection, None)
        if not connection.open or connection.sessions:
            return
        self._log.warn(
            "MSRP connection from {peer} bound to no session within {timeout} s:"
            " closed",
            peer=connection.peer,
            timeout=self.unboundTimeout,
        )
        connection.abort()

    # -- relay (RFC 4976) --------------------------------------------------

    @property
    def relayAuthorized(self) -> RelayAuthorized | None:
        """
        The relay's current authorization (Use-Path), if usable.
        """
        return None if self._relay is None else self._relay.authorized

    @property
    def relayConnection(self) -> MSRPConnection | None:
        """
        The connection to the relay, if any.
        """
        return None if self._relay is None else self._relay.connection

    def startRelay(self) -> Deferred[RelayAuthorized]:
        """
        Connect to the relay and authenticate (RFC 4976 section 5.1); AUTH
        is repeated before the Use-Path expires (see L{RelayClient.start}).

        @raise ValueError: Without a relay URI.
        """
        if self._relay is None:
            raise ValueError("no MSRP relay configured")
        return self._relay.start()

    def stopRelay(self) -> None:
        """
        Stop using the relay: no refreshes, no reconnection; the relay
        connection is closed.
        """
        if self._relay is not None:
            self._relay.stop()
