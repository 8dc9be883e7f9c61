# -*- test-case-name: tests.sip.test_transport -*-
"""
SIP transports on Twisted: UDP, TCP and TLS (RFC 3261 section 18, RFC 3581).

L{SIPTransport} owns the listening ports and the stream connections.  It
turns received octets into L{SIPRequest}/L{SIPResponse} objects (with
L{parseDatagram} or L{SIPStreamParser}) and hands them, with the L{Flow}
they arrived on, to one L{ISIPTransportUser} (the transaction layer).  It
sends:

 - requests to an L{Address} (transport, host, port): over UDP from the
   listening socket; over TCP/TLS on an open connection to that address if
   there is one (RFC 3261 section 18.1.1), else over a new connection;
 - responses along the L{Flow} the request came on (section 18.2.2): the
   same connection for streams (or, if it is gone, a new one to the
   C{received} address and the sent-by port), and for UDP the C{received}
   address with the C{rport} port (RFC 3581 section 4) or the sent-by
   port.

Received requests get C{received} on their top Via when the source address
differs from the sent-by host, and C{rport} filled (with C{received}) when
the request asked for it (RFC 3581 section 4).  Via headers for outgoing
requests come from L{SIPTransport.makeVia}: sent-by is the advertised host
and the listening port of that transport, the branch starts with the RFC
3261 magic cookie, and C{rport} is requested.

Malformed requests are answered (400, 505, 513) with
L{SIPParseError.makeResponse} when possible; anything else is dropped with
a warning (fields C{peer}, C{error}).  No exception escapes
C{datagramReceived} or C{dataReceived}.  Streams answer RFC 5626 CRLF
pings with a pong and set C{TCP_NODELAY}.

TLS peers are verified (RFC 3261 section 26.2, RFC 5922 section 7):
outgoing connections check the server's certificate against the trust
roots (the configured CA certificates, else the system trust store) and
the host connected to; with CA certificates configured, the TLS listener
asks clients for a certificate (optional: a client without one is still
served and simply has no identity, RFC 5922 section 7.4) and a client
certificate that does not verify against them fails the handshake.  A
connection carries nothing before its handshake has completed, and
L{SIPStreamConnection.peerVerified} says whether the peer certificate
(from which the trust decision reads names) has been verified.

Not done here (hooks for later): idle-connection timeouts, RFC 5923
connection aliases, and switching a large UDP request to TCP (section
18.1.1).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Iterable

from cryptography import x509
from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.interfaces import (
    IAddress,
    IConnector,
    IHandshakeListener,
    IListeningPort,
    IOpenSSLClientConnectionCreator,
    ITCPTransport,
)
from twisted.internet.protocol import (
    ClientFactory,
    DatagramProtocol,
    Protocol,
    ServerFactory,
    connectionDone,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from stoxgw.sip.framing import (
    DEFAULT_MAX_MESSAGE_BYTES,
    PONG_BYTES,
    KeepAlive,
    SIPStreamParser,
)
from stoxgw.sip.headers import HeaderError, Headers, Via, parseVia
from stoxgw.sip.message import (
    SIPMessage,
    SIPParseError,
    SIPRequest,
    SIPResponse,
    parseDatagram,
    parseHead,
)
from stoxgw.sip.uri import SIPURI

__all__ = [
    "MAGIC_COOKIE",
    "TransportKind",
    "Address",
    "Flow",
    "ISIPTransportUser",
    "SIPTransport",
    "SIPStreamConnection",
    "TransportError",
    "newBranch",
    "stampVia",
    "responseAddress",
    "newTag",
    "loadCertificates",
]

#: RFC 3261 section 8.1.1.7: every branch we make starts with this.
MAGIC_COOKIE = "z9hG4bK"


def newBranch() -> str:
    """
    @return: A fresh Via branch: the magic cookie and 96 random bits.
    """
    return MAGIC_COOKIE + secrets.token_hex(12)


def _failure(error: BaseException) -> Failure:
    return Failure(error)  # type: ignore[no-untyped-call]


def loadCertificates(path: str) -> tuple[ssl.Certificate, ...]:
    """
    Every certificate in a PEM file (a CA bundle, or a certificate chain),
    in file order; other PEM blocks (a private key) are skipped.

    @raise OSError: The file cannot be read.
    @raise ValueError: It holds no certificate, or one that cannot be
        parsed.
    """
    with open(path, "rb") as f:
        pem = f.read()
    return tuple(
        ssl.Certificate(crypto.X509.from_cryptography(certificate))  # type: ignore[no-untyped-call]
        for certificate in x509.load_pem_x509_certificates(pem)
    )


class TransportKind(Enum):
    """
    The SIP transports this stack speaks, by their Via token.
    """

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"

    @property
    def reliable(self) -> bool:
        """
        Whether the transport is reliable (no retransmissions, RFC 3261
        section 17).
        """
        return self is not TransportKind.UDP

    @property
    def defaultPort(self) -> int:
        """
        5060, or 5061 for TLS (RFC 3261 section 19.1.2).
        """
        return 5061 if self is TransportKind.TLS else 5060

    @property
    def uriParameter(self) -> str:
        """
        The C{transport} URI parameter value (C{udp}, C{tcp}, C{tls}).
        """
        return self.value.lower()

    @classmethod
    def fromToken(cls, token: str) -> TransportKind:
        """
        @raise ValueError: Not a transport we speak.
        """
        return cls(token.upper())


@dataclass(frozen=True, slots=True)
class Address:
    """
    Where to send: a transport and an IP address (or host name) and port.

    @ivar transport: The transport.
    @ivar host: IP address literal (or a name the reactor resolves).
    @ivar port: Port.
    """

    transport: TransportKind
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.value}:{host}:{self.port}"


class TransportError(Exception):
    """
    A message could not be sent (connection refused or lost, socket error).
    """


@dataclass(frozen=True, slots=True, eq=False)
class Flow:
    """
    How a message arrived: the peer address, and for streams the
    connection, so that responses go back the same way.

    @ivar source: The peer's address and the transport.
    @ivar connection: The stream connection, or L{None} for UDP.
    """

    source: Address
    connection: SIPStreamConnection | None = None

    @property
    def transport(self) -> TransportKind:
        """
        The transport of the flow.
        """
        return self.source.transport

    @property
    def reliable(self) -> bool:
        """
        Whether the flow's transport is reliable.
        """
        return self.source.transport.reliable


class ISIPTransportUser(Interface):
    """
    Receives the messages a L{SIPTransport} parsed (the transaction layer).
    """

    def messageReceived(message: SIPMessage, flow: Flow) -> None:
        """
        A well-formed message arrived (requests already carry C{received}
        and C{rport} on their top Via).
        """


def _replaceTopVia(headers: Headers, via: Via) -> Headers:
    """
    Replace the first element of the first Via line.
    """
    fields = list(headers.fields)
    for index, f in enumerate(fields):
        if f.canonicalName == "Via":
            rest = parseVia(f.value)[1:]
            value = ", ".join([via.serialize()] + [v.serialize() for v in rest])
            fields[index] = type(f)(f.name, value)
            break
    return Headers(tuple(fields))


def stampVia(request: SIPRequest, host: str, port: int) -> SIPRequest:
    """
    Add C{received} and fill C{rport} on the top Via of a received request
    (RFC 3261 section 18.2.1, RFC 3581 section 4).

    @param host: The source IP address.
    @param port: The source port.
    @raise HeaderError: The Via is malformed.
    """
    top = request.topVia
    updated = top
    if top.rport is not None:
        updated = updated.withParameter("received", host).withParameter(
            "rport", str(port)
        )
    elif top.host.lower() != host.lower():
        updated = updated.withParameter("received", host)
    if updated is top:
        return request
    return SIPRequest(
        method=request.method,
        uri=request.uri,
        headers=_replaceTopVia(request.headers, updated),
        body=request.body,
        version=request.version,
    )


def responseAddress(response: SIPResponse, transport: TransportKind) -> Address:
    """
    Where to send a response when not along the request's connection
    (RFC 3261 section 18.2.2, RFC 3581 section 4): the C{received} address
    (else the sent-by host) and the C{rport} port (else the sent-by port,
    else the transport's default port).

    @raise HeaderError: No usable top Via.
    """
    via = response.topVia
    host = via.received or via.host
    rport = via.rport
    if isinstance(rport, int) and not isinstance(rport, bool):
        port = rport
    else:
        port = via.port or transport.defaultPort
    return Address(transport, host, port)


def _peerOf(address: IAddress | None, kind: TransportKind) -> Address:
    host = getattr(address, "host", "0.0.0.0")
    port = getattr(address, "port", 0)
    return Address(kind, str(host), int(port))


@implementer(IHandshakeListener)
class SIPStreamConnection(Protocol):
    """
    One TCP or TLS connection carrying SIP (RFC 3261 section 18.3 framing).

    @ivar kind: L{TransportKind.TCP} or L{TransportKind.TLS}.
    @ivar peer: The peer's address (set when connected).
    @ivar ready: Whether the connection can carry messages: connected, and
        for TLS with its handshake completed (not the same as
        L{Protocol.connected}, which Twisted sets at TCP connect).
    @ivar verifiesPeer: Whether the TLS options of this connection verify
        a certificate the peer presents and fail the handshake when it does
        not verify: outgoing connections (the client options check the
        server's certificate and host), and incoming ones when the
        listener has CA certificates to check client certificates with.
    """

    _log = Logger()

    def __init__(
        self, owner: SIPTransport, kind: TransportKind, verifiesPeer: bool = False
    ) -> None:
        self.owner = owner
        self.kind = kind
        self.verifiesPeer = verifiesPeer
        self.peer = Address(kind, "0.0.0.0", 0)
        self.parser = SIPStreamParser(owner.maxMessageBytes)
        self.ready = False
        self.flow = Flow(self.peer, self)

    @property
    def peerVerified(self) -> bool:
        """
        Whether the peer's certificate, if it presented one, has been
        verified (RFC 5922 section 7.1: checked per RFC 5280 before any
        identity is read from it): a TLS connection whose handshake has
        completed with options that verify the peer (L{verifiesPeer}),
        and whose OpenSSL connection indeed has peer verification on.
        Names may be read from the peer certificate only when this holds.
        """
        if (
            self.kind is not TransportKind.TLS
            or not self.ready
            or not self.verifiesPeer
        ):
            return False
        getHandle = getattr(self.transport, "getHandle", None)
        if getHandle is None:
            return True
        try:
            mode = getHandle().get_verify_mode()
        except Exception:
            return False
        return bool(mode & SSL.VERIFY_PEER)

    def connectionMade(self) -> None:
        """
        Turn Nagle off; register a TCP connection for reuse now, a TLS one
        once its handshake has completed (L{handshakeCompleted}), so that
        nothing counts as sent over a TLS connection whose peer was not
        verified.
        """
        assert self.transport is not None
        self.peer = _peerOf(self.transport.getPeer(), self.kind)
        self.flow = Flow(self.peer, self)
        if ITCPTransport.providedBy(self.transport):
            try:
                self.transport.setTcpNoDelay(True)
            except Exception:  # pragma: no cover - platform dependent
                pass
        if self.kind is not TransportKind.TLS:
            self._ready()

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake succeeded (L{IHandshakeListener}), so a
        certificate the peer presented passed OpenSSL's verification when
        L{verifiesPeer}: the connection is usable, unless the server's
        identity failed Twisted's host check, in which case Twisted has
        already begun to abort it (and L{connectionLost} will fail what
        waited for it).
        """
        if self.transport is not None and getattr(
            self.transport, "disconnecting", False
        ):
            return
        self._ready()

    def _ready(self) -> None:
        self.ready = True
        self.owner._connectionMade(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Forget the connection; if it never became usable (a failed TLS
        handshake), fail what waited for it.
        """
        wasReady, self.ready = self.ready, False
        if wasReady:
            self.owner._connectionLost(self)
        elif isinstance(self.factory, _StreamClientFactory):
            self.owner._connectFailed(self.factory, reason)
        elif self.kind is TransportKind.TLS:
            # An incoming TLS connection whose handshake failed, e.g. on a
            # client certificate that does not verify.
            self._log.warn(
                "SIP TLS handshake with {peer} failed: {error}",
                peer=str(self.peer),
                error=reason.getErrorMessage(),
            )

    def send(self, data: bytes) -> None:
        """
        Write octets.

        @raise TransportError: The connection is closed.
        """
        if not self.ready or self.transport is None:
            raise TransportError(f"connection to {self.peer} is closed")
        self.transport.write(data)

    def dataReceived(self, data: bytes) -> None:
        """
        Frame, parse and deliver; never raises.
        """
        try:
            events = self.parser.feed(data)
        except Exception as e:  # pragma: no cover - the parser never raises
            self._log.failure("SIP stream parser failed", peer=str(self.peer), error=e)
            return
        for event in events:
            try:
                self._event(event)
            except Exception as e:
                self._log.failure(
                    "Unhandled error on SIP message from {peer}",
                    peer=str(self.peer),
                    error=e,
                )

    def _event(self, event: object) -> None:
        if event is KeepAlive.PING:
            if self.transport is not None:
                self.transport.write(PONG_BYTES)
            return
        if event is KeepAlive.PONG:
            return
        if isinstance(event, SIPParseError):
            self.owner._parseError(event, self.flow)
            if event.fatal and self.transport is not None:
                self.transport.loseConnection()
            return
        assert isinstance(event, (SIPRequest, SIPResponse))
        self.owner._deliver(event, self.flow)


class _StreamServerFactory(ServerFactory):
    noisy = False

    def __init__(
        self, owner: SIPTransport, kind: TransportKind, verifiesPeer: bool = False
    ) -> None:
        self.owner = owner
        self.kind = kind
        self.verifiesPeer = verifiesPeer

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        return SIPStreamConnection(self.owner, self.kind, self.verifiesPeer)


class _StreamClientFactory(ClientFactory):
    """
    One outgoing connection attempt; sends what waits for it once up.
    """

    noisy = False

    def __init__(self, owner: SIPTransport, address: Address) -> None:
        self.owner = owner
        self.address = address
        self.waiting: list[tuple[bytes, Deferred[Flow]]] = []
        self.connection: SIPStreamConnection | None = None

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        # The client options verify the server (the clientTLS contract).
        connection = SIPStreamConnection(
            self.owner,
            self.address.transport,
            verifiesPeer=self.address.transport is TransportKind.TLS,
        )
        connection.factory = self
        self.connection = connection
        return connection

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        self.owner._connectFailed(self, reason)


class _UDPProtocol(DatagramProtocol):
    """
    The UDP socket: one datagram, one message.
    """

    noisy = False

    _log = Logger()

    def __init__(self, owner: SIPTransport) -> None:
        self.owner = owner

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Parse and deliver; never raises.
        """
        peer = Address(TransportKind.UDP, str(addr[0]), int(addr[1]))
        try:
            self.owner._datagramReceived(datagram, peer)
        except Exception as e:
            self._log.failure(
                "Unhandled error on SIP datagram from {peer}", peer=str(peer), error=e
            )


class SIPTransport:
    """
    The SIP transport layer: listeners, connections, sending.

    @ivar reactor: The reactor (L{IReactorUDP}, L{IReactorTCP}, and
        L{IReactorSSL} for TLS).
    @ivar host: The address the listeners bind to.
    @ivar advertisedHost: The host put into Via sent-by and Contact.
    @ivar ports: The bound port of each listening transport.
    @ivar maxMessageBytes: Largest accepted message.
    @ivar user: Who receives parsed messages.
    @ivar caCertificates: The CA certificates peers' TLS certificates are
        verified against, or C{()} for the defaults (see L{__init__}).
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        host: str = "127.0.0.1",
        *,
        advertisedHost: str | None = None,
        maxMessageBytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        clientTLS: Callable[[str], IOpenSSLClientConnectionCreator] | None = None,
        connectTimeout: float = 10.0,
        caCertificates: Iterable[ssl.Certificate] = (),
    ) -> None:
        """
        @param reactor: Provides L{IReactorUDP}, L{IReactorTCP} (and
            L{IReactorSSL} for TLS).
        @param host: Listening address.
        @param advertisedHost: Host for Via and Contact (default: C{host}).
        @param clientTLS: Makes the TLS client options for a peer host;
            they must verify the server's certificate, since names are read
            from it for the trust decision (default:
            L{ssl.optionsForClientTLS} with the C{caCertificates} as trust
            root, or the system trust store without them).
        @param connectTimeout: Seconds an outgoing connection may take.
        @param caCertificates: Trust roots for peers' certificates (the
            C{[sip] tls_ca_file}): with them the TLS listener asks clients
            for a certificate and verifies it against them, and outgoing
            connections verify servers against them instead of the system
            trust store.  Without them the listener asks for no client
            certificate.
        """
        self.reactor = reactor
        self.host = host
        self.advertisedHost = advertisedHost or host
        self.maxMessageBytes = maxMessageBytes
        self.ports: dict[TransportKind, int] = {}
        self.user: ISIPTransportUser | None = None
        self.caCertificates = tuple(caCertificates)
        self._clientTLS = clientTLS or self._defaultClientTLS
        self._connectTimeout = connectTimeout
        self._listening: list[IListeningPort] = []
        self._udp: _UDPProtocol | None = None
        self._connections: dict[Address, SIPStreamConnection] = {}
        self._connecting: dict[Address, _StreamClientFactory] = {}

    # -- listening -----------------------------------------------------

    def listenUDP(self, port: int = 5060) -> IListeningPort:
        """
        Listen for SIP over UDP.
        """
        protocol = _UDPProtocol(self)
        listening: IListeningPort = self.reactor.listenUDP(
            port, protocol, interface=self.host
        )
        self._udp = protocol
        self._listening.append(listening)
        self.ports[TransportKind.UDP] = _boundPort(listening, port)
        return listening

    def listenTCP(self, port: int = 5060) -> IListeningPort:
        """
        Listen for SIP over TCP.
        """
        listening: IListeningPort = self.reactor.listenTCP(
            port, _StreamServerFactory(self, TransportKind.TCP), interface=self.host
        )
        self._listening.append(listening)
        self.ports[TransportKind.TCP] = _boundPort(listening, port)
        return listening

    def _defaultClientTLS(self, hostname: str) -> IOpenSSLClientConnectionCreator:
        """
        Client options that verify the server's certificate against the
        C{caCertificates} (else the system trust store) and C{hostname}
        (RFC 5922 section 7.3).
        """
        trustRoot = None
        if self.caCertificates:
            trustRoot = ssl.trustRootFromCertificates(  # type: ignore[no-untyped-call]
                self.caCertificates
            )
        return ssl.optionsForClientTLS(hostname, trustRoot=trustRoot)

    def serverTLSOptions(
        self, certificateFile: str, privateKeyFile: str | None = None
    ) -> ssl.CertificateOptions:
        """
        The TLS server options of the listener: our certificate, the rest
        of the chain from C{certificateFile} (sent to the peer), our key;
        with C{caCertificates}, a request for the client's certificate,
        optional (a client without one is served, RFC 5922 section 7.4),
        which, when sent, must verify against them or the handshake fails
        (OpenSSL C{VERIFY_PEER} without C{VERIFY_FAIL_IF_NO_PEER_CERT}).

        @param privateKeyFile: The key, if not in C{certificateFile}.
        @raise OSError: A file cannot be read.
        @raise ValueError: No certificate, or no matching key.
        """
        with open(certificateFile, "rb") as f:
            pem = f.read()
        if privateKeyFile is not None and privateKeyFile != certificateFile:
            with open(privateKeyFile, "rb") as f:
                pem = pem + b"\n" + f.read()
        certificate = ssl.PrivateCertificate.loadPEM(pem)  # type: ignore[no-untyped-call]
        chain = loadCertificates(certificateFile)[1:]
        verification: dict[str, Any] = {}
        if self.caCertificates:
            verification = {
                "verify": True,
                "caCerts": [c.original for c in self.caCertificates],
                "requireCertificate": False,
            }
        return ssl.CertificateOptions(
            privateKey=certificate.privateKey.original,
            certificate=certificate.original,
            extraCertChain=[c.original for c in chain],
            **verification,
        )

    def listenTLS(
        self, port: int, certificateFile: str, privateKeyFile: str | None = None
    ) -> IListeningPort:
        """
        Listen for SIP over TLS with a PEM certificate (chain) and key
        (L{serverTLSOptions}: with C{caCertificates}, client certificates
        are asked for and verified).

        @param privateKeyFile: The key, if not in C{certificateFile}.
        """
        options = self.serverTLSOptions(certificateFile, privateKeyFile)
        listening: IListeningPort = self.reactor.listenSSL(
            port,
            _StreamServerFactory(
                self, TransportKind.TLS, verifiesPeer=bool(self.caCertificates)
            ),
            options,
            interface=self.host,
        )
        self._listening.append(listening)
        self.ports[TransportKind.TLS] = _boundPort(listening, port)
        return listening

    def stopListening(self) -> Deferred[None]:
        """
        Close the listeners and every connection.
        """
        results = [d for d in (p.stopListening() for p in self._listening) if d]
        self._listening = []
        self._udp = None
        for connection in list(self._connections.values()):
            if connection.transport is not None:
                connection.transport.loseConnection()
        done: Deferred[None] = gatherResults(results).addCallback(lambda _: None)
        return done

    @property
    def transports(self) -> tuple[TransportKind, ...]:
        """
        The transports we listen on, in preference order.
        """
        return tuple(k for k in TransportKind if k in self.ports)

    # -- headers -------------------------------------------------------

    def sentBy(self, kind: TransportKind) -> tuple[str, int]:
        """
        Our sent-by host and port for a transport.
        """
        port = self.ports.get(kind) or self.ports.get(
            TransportKind.TCP if kind is TransportKind.TLS else kind,
            kind.defaultPort,
        )
        return self.advertisedHost, port

    def makeVia(self, kind: TransportKind, branch: str | None = None) -> Via:
        """
        A Via for a request we send (RFC 3261 section 18.1.1, RFC 3581):
        our sent-by, a new (or the given) branch, C{rport} requested.
        """
        host, port = self.sentBy(kind)
        return Via(
            transport=kind.value,
            host=host,
            port=port,
            parameters=(("branch", branch or newBranch()), ("rport", None)),
        )

    # -- sending -------------------------------------------------------

    def sendMessage(self, message: SIPMessage, destination: Address) -> Deferred[Flow]:
        """
        Send a message to an address: UDP from the listening socket, a
        stream over an open connection to it or a new one.

        @return: Fires with the flow used once written (for a new
            connection: once connected), fails with L{TransportError}.
        """
        data = message.serialize()
        self._trace(message, destination, "sent")
        if destination.transport is TransportKind.UDP:
            if self._udp is None or self._udp.transport is None:
                return fail(TransportError("UDP is not listening"))
            try:
                self._udp.transport.write(data, (destination.host, destination.port))
            except Exception as e:
                return fail(TransportError(str(e)))
            return succeed(Flow(destination))
        connection = self._connections.get(destination)
        if connection is not None and connection.ready:
            try:
                connection.send(data)
            except TransportError as e:
                return fail(e)
            return succeed(connection.flow)
        return self._connectAndSend(destination, data)

    def sendResponse(self, response: SIPResponse, flow: Flow) -> Deferred[Flow]:
        """
        Send a response along the flow its request came on (RFC 3261
        section 18.2.2).
        """
        if flow.connection is not None:
            if flow.connection.ready:
                self._trace(response, flow.source, "sent")
                try:
                    flow.connection.send(response.serialize())
                except TransportError as e:
                    return fail(e)
                return succeed(flow)
            try:
                destination = responseAddress(response, flow.transport)
            except HeaderError as e:
                return fail(TransportError(str(e)))
            return self.sendMessage(response, destination)
        try:
            destination = responseAddress(response, flow.transport)
        except HeaderError as e:
            return fail(TransportError(str(e)))
        return self.sendMessage(response, destination)

    def _connectAndSend(self, destination: Address, data: bytes) -> Deferred[Flow]:
        d: Deferred[Flow] = Deferred()
        factory = self._connecting.get(destination)
        if factory is None:
            factory = _StreamClientFactory(self, destination)
            self._connecting[destination] = factory
            if destination.transport is TransportKind.TLS:
                if not hasattr(self.reactor, "connectSSL"):
                    del self._connecting[destination]
                    return fail(TransportError("TLS is not available"))
                self.reactor.connectSSL(
                    destination.host,
                    destination.port,
                    factory,
                    self._clientTLS(destination.host),
                    timeout=self._connectTimeout,
                )
            else:
                self.reactor.connectTCP(
                    destination.host,
                    destination.port,
                    factory,
                    timeout=self._connectTimeout,
                )
        factory.waiting.append((data, d))
        return d

    # -- connection bookkeeping ------------------------------------------

    def _connectionMade(self, connection: SIPStreamConnection) -> None:
        self._connections[connection.peer] = connection
        factory = connection.factory
        if isinstance(factory, _StreamClientFactory):
            # Register under the address we dialled too (a host name).
            self._connections[factory.address] = connection
            self._connecting.pop(factory.address, None)
            waiting, factory.waiting = factory.waiting, []
            for data, d in waiting:
                try:
                    connection.send(data)
                except TransportError as e:
                    d.errback(_failure(e))
                else:
                    d.callback(connection.flow)
        self._log.debug(
            "SIP {transport} connection up with {peer}",
            transport=connection.kind.value,
            peer=str(connection.peer),
        )

    def _connectionLost(self, connection: SIPStreamConnection) -> None:
        for key, value in list(self._connections.items()):
            if value is connection:
                del self._connections[key]
        self._log.debug(
            "SIP {transport} connection with {peer} closed",
            transport=connection.kind.value,
            peer=str(connection.peer),
        )

    def _connectFailed(self, factory: _StreamClientFactory, reason: Failure) -> None:
        self._connecting.pop(factory.address, None)
        waiting, factory.waiting = factory.waiting, []
        self._log.warn(
            "SIP connection to {peer} failed: {error}",
            peer=str(factory.address),
            error=reason.getErrorMessage(),
        )
        for _, d in waiting:
            d.errback(_failure(TransportError(reason.getErrorMessage())))

    # -- receiving -----------------------------------------------------

    def _datagramReceived(self, datagram: bytes, peer: Address) -> None:
        if not datagram.strip(b"\r\n\x00"):
            # A CRLF keep-alive (RFC 5626 section 4.4.1 uses STUN on UDP;
            # plain CRLFs are still common): nothing to do.
            return
        flow = Flow(peer)
        if len(datagram) > self.maxMessageBytes:
            self._oversized(datagram, flow)
            return
        try:
            message = parseDatagram(datagram)
        except SIPParseError as e:
            self._parseError(e, flow)
            return
        self._deliver(message, flow)

    def _oversized(self, datagram: bytes, flow: Flow) -> None:
        end = datagram.find(b"\r\n\r\n")
        try:
            head = parseHead(datagram[: end if end != -1 else self.maxMessageBytes])
        except SIPParseError as e:
            self._parseError(e, flow)
            return
        self._parseError(head.error(513, "Message Too Large"), flow)

    def _parseError(self, error: SIPParseError, flow: Flow) -> None:
        response = error.makeResponse(toTag=newTag())
        if response is None:
            self._log.warn(
                "Dropped malformed SIP message from {peer}: {error}",
                peer=str(flow.source),
                error=str(error),
            )
            return
        self._log.warn(
            "Malformed SIP request from {peer}: {error}",
            peer=str(flow.source),
            error=str(error),
        )
        try:
            request = SIPRequest("X", _DUMMY_URI, response.headers)
            stamped = stampVia(request, flow.source.host, flow.source.port)
            response = SIPResponse(
                response.status, response.reason, stamped.headers, response.body
            )
        except HeaderError:
            pass
        self.sendResponse(response, flow).addErrback(self._sendFailed, flow)

    def _sendFailed(self, reason: Failure, flow: Flow) -> None:
        self._log.warn(
            "Could not send SIP response to {peer}: {error}",
            peer=str(flow.source),
            error=reason.getErrorMessage(),
        )

    def _deliver(self, message: SIPMessage, flow: Flow) -> None:
        if isinstance(message, SIPRequest):
            try:
                message = stampVia(message, flow.source.host, flow.source.port)
            except HeaderError as e:
                self._log.warn(
                    "Dropped SIP request with bad Via from {peer}: {error}",
                    peer=str(flow.source),
                    error=str(e),
                )
                return
        self._trace(message, flow.source, "received")
        if self.user is None:
            self._log.warn(
                "No SIP transport user; dropped message from {peer}",
                peer=str(flow.source),
            )
            return
        self.user.messageReceived(message, flow)

    def _trace(self, message: SIPMessage, peer: Address, direction: str) -> None:
        self._log.debug(
            "SIP {direction} {peer}: {start}",
            direction=direction,
            peer=str(peer),
            start=_startLine(message),
        )


def _startLine(message: SIPMessage) -> str:
    if isinstance(message, SIPRequest):
        return f"{message.method} {message.uri}"
    return f"{message.status} {message.reason}"


def newTag() -> str:
    """
    @return: A fresh From/To tag (RFC 3261 section 19.3: 32 random bits at
        least; we use 64).
    """
    return secrets.token_hex(8)


def _boundPort(listening: IListeningPort, requested: int) -> int:
    try:
        host = listening.getHost()
    except Exception:
        return requested
    port = getattr(host, "port", requested)
    return int(port) if port else requested


_DUMMY_URI = SIPURI("sip", "invalid")
