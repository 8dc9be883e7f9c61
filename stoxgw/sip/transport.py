# -*- test-case-name: tests.sip.test_transport,tests.sip.test_transportlimits -*-
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

Bounded resources on streams (issue 11; C{docs/limits.md}):

 - Output: each L{SIPStreamConnection} is a streaming producer of its own
   transport.  When Twisted's write buffer holds more than its
   C{bufferSize} (64 KiB), it pauses the connection, which stops reading
   from the peer until the buffer has drained: a peer that sends (CRLF
   pings, requests) and never reads is held back by TCP flow control
   instead of making the gateway queue an answer per message.  What is
   still written while paused (the rest of the current read, requests
   from the layers above) is counted, and beyond C{maxOutputBytes} the
   connection is aborted; so is a connection that stays paused for
   C{readTimeout} seconds.  Aborting drops the buffer at once (a graceful
   close would wait for a peer that never reads).
 - Read timeout: a message must be complete within C{readTimeout}
   seconds of its first octet (a peer sending one octet a second is cut).
 - Idle timeout: a connection that carries no dialog and no transaction,
   and on which no SIP message passed for C{idleTimeout} seconds, is
   closed (CRLF keep-alives do not count as traffic).  The layers above
   say which dialogs live (L{SIPTransport.dialogStarted} and
   L{SIPTransport.dialogEnded}, once per dialog usage: the UA core for
   INVITE dialogs, the subscriptions for theirs); a connection carries a
   live dialog from the first message of its Call-ID that passes on it
   (or the flow given when it started) until the dialog's last usage
   ends.  A request keeps its connection in use until its final response
   passes, for L{TRANSACTION_HOLD} seconds at most.
 - Connection caps: the listeners accept at most
   C{maxConnectionsPerAddress} connections per source address and
   C{maxConnections} in all; beyond, a new connection is aborted as soon
   as it is accepted (before any TLS handshake), logged once per address
   per minute.

Every timer runs on the injected reactor, and a closed connection keeps
no timer and is forgotten by the transport.  By default (the library's
own use, e.g. the chat client) there are no caps and no timeouts; the
service passes the C{[sip]} configuration.

The parts: L{stoxgw.sip.flows} (transports, addresses, flows, Via
stamping), L{stoxgw.sip.connection} (one stream connection and its
bounds); this module holds L{SIPTransport} (ports, connections by peer,
sending, the dialog count) and is where their names are imported from.

Not done here (hooks for later): RFC 5923 connection aliases, and
switching a large UDP request to TCP (section 18.1.1).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from cryptography import x509
from OpenSSL import crypto
from twisted.internet import ssl
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.interfaces import IListeningPort, IOpenSSLClientConnectionCreator
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from stoxgw._util import failureOf
from stoxgw.limits import ConnectionLimits
from stoxgw.sip.connection import (
    CLOSE_GRACE,
    DEFAULT_MAX_OUTPUT_BYTES,
    TRANSACTION_HOLD,
    SIPStreamConnection,
    StreamClientFactory,
    StreamServerFactory,
)
from stoxgw.sip.flows import (
    MAGIC_COOKIE,
    Address,
    Flow,
    ISIPTransportUser,
    TransportError,
    TransportKind,
    newBranch,
    newTag,
    responseAddress,
    stampVia,
)
from stoxgw.sip.framing import DEFAULT_MAX_MESSAGE_BYTES
from stoxgw.sip.headers import HeaderError, Via
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
    "TRANSACTION_HOLD",
    "CLOSE_GRACE",
    "DEFAULT_MAX_OUTPUT_BYTES",
]


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
            self.owner.datagramReceived(datagram, peer)
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
    @ivar idleTimeout: Seconds without a SIP message after which a stream
        connection without dialog or transaction is closed, or L{None}.
    @ivar readTimeout: Seconds a stream message may take from its first
        octet to its last, and a stream may stay paused because its peer
        does not read, or L{None}.
    @ivar maxOutputBytes: The most octets written to a paused stream
        (beyond Twisted's 64 KiB write buffer) before it is aborted.
    @ivar limits: The caps on accepted stream connections, or L{None}.
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
        idleTimeout: float | None = None,
        readTimeout: float | None = None,
        maxOutputBytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        maxConnectionsPerAddress: int | None = None,
        maxConnections: int | None = None,
    ) -> None:
        """
        @param reactor: Provides L{IReactorUDP}, L{IReactorTCP} (and
            L{IReactorSSL} for TLS), and L{IReactorTime} for the timers.
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
        @param idleTimeout: See L{idleTimeout} (C{[sip] idle_timeout}).
        @param readTimeout: See L{readTimeout} (C{[sip] read_timeout}).
        @param maxOutputBytes: See L{maxOutputBytes} (C{[sip]
            max_output_bytes}).
        @param maxConnectionsPerAddress: The most accepted stream
            connections from one source address (C{[sip]
            max_connections_per_address}), or L{None} for no cap.
        @param maxConnections: The most accepted stream connections in all
            (C{[sip] max_connections}), or L{None} for no cap.
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
        self._connecting: dict[Address, StreamClientFactory] = {}
        self.idleTimeout = idleTimeout
        self.readTimeout = readTimeout
        self.maxOutputBytes = maxOutputBytes
        self.limits = ConnectionLimits.ifAny(maxConnectionsPerAddress, maxConnections)
        # Call-ID of a live dialog -> how many usages it has, and the
        # stream connections that carry it (see dialogStarted).
        self._dialogUsages: dict[str, int] = {}
        self._dialogConnections: dict[str, set[SIPStreamConnection]] = {}

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
            port, StreamServerFactory(self, TransportKind.TCP), interface=self.host
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
            StreamServerFactory(
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
        for connection in set(self._connections.values()):
            connection.close()
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
                connection.send(data, message)
            except TransportError as e:
                return fail(e)
            return succeed(connection.flow)
        return self._connectAndSend(destination, message, data)

    def sendResponse(self, response: SIPResponse, flow: Flow) -> Deferred[Flow]:
        """
        Send a response along the flow its request came on (RFC 3261
        section 18.2.2).
        """
        if flow.connection is not None:
            if flow.connection.ready:
                self._trace(response, flow.source, "sent")
                try:
                    flow.connection.send(response.serialize(), response)
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

    def _connectAndSend(
        self, destination: Address, message: SIPMessage, data: bytes
    ) -> Deferred[Flow]:
        d: Deferred[Flow] = Deferred()
        factory = self._connecting.get(destination)
        if factory is None:
            factory = StreamClientFactory(self, destination)
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
        factory.waiting.append((message, data, d))
        return d

    # -- for its connections (L{stoxgw.sip.connection}) -------------------

    def connectionMade(self, connection: SIPStreamConnection) -> None:
        """
        A connection is up (and for TLS past its handshake): keep it
        under its peer's address (and the one dialled), and send what
        waited for it.
        """
        self._connections[connection.peer] = connection
        factory = connection.factory
        if isinstance(factory, StreamClientFactory):
            # Register under the address we dialled too (a host name).
            self._connections[factory.address] = connection
            self._connecting.pop(factory.address, None)
            waiting, factory.waiting = factory.waiting, []
            for message, data, d in waiting:
                try:
                    connection.send(data, message)
                except TransportError as e:
                    d.errback(failureOf(e))
                else:
                    d.callback(connection.flow)
        self._log.debug(
            "SIP {transport} connection up with {peer}",
            transport=connection.kind.value,
            peer=str(connection.peer),
        )

    def connectionLost(self, connection: SIPStreamConnection) -> None:
        """
        A connection is gone: forget it.
        """
        for key, value in list(self._connections.items()):
            if value is connection:
                del self._connections[key]
        self._log.debug(
            "SIP {transport} connection with {peer} closed",
            transport=connection.kind.value,
            peer=str(connection.peer),
        )

    def connectFailed(self, factory: StreamClientFactory, reason: Failure) -> None:
        """
        An outgoing connection failed: what waited for it fails.
        """
        self._connecting.pop(factory.address, None)
        waiting, factory.waiting = factory.waiting, []
        self._log.warn(
            "SIP connection to {peer} failed: {error}",
            peer=str(factory.address),
            error=reason.getErrorMessage(),
        )
        for _, _, d in waiting:
            d.errback(failureOf(TransportError(reason.getErrorMessage())))

    # -- limits ----------------------------------------------------------

    def admit(self, connection: SIPStreamConnection) -> bool:
        """
        Count an accepted SIP connection under the caps (the connection
        keeps its address for L{release}), or refuse it
        (L{ConnectionLimits.admitOrLog}: one log line per source address
        per minute).

        @return: Whether it may stay.
        """
        limits = self.limits
        if limits is None:
            return True
        host = connection.peer.host
        if not limits.admitOrLog(
            host,
            self.reactor.seconds(),
            self._log,
            "Refused SIP {transport} connection from {peer}",
            transport=connection.kind.value,
            peer=str(connection.peer),
        ):
            return False
        connection.admittedHost = host
        return True

    def release(self, connection: SIPStreamConnection) -> None:
        """
        An accepted connection closed: it no longer counts under the
        caps.
        """
        host, connection.admittedHost = connection.admittedHost, None
        if host is not None and self.limits is not None:
            self.limits.release(host)

    # -- dialogs (the idle timeout) ----------------------------------------

    def dialogStarted(self, callID: str, flow: Flow | None = None) -> None:
        """
        A dialog usage with this Call-ID started (an INVITE dialog, a
        subscription): the stream connections its messages pass over, and
        C{flow}'s (that of the message that made it), are not closed as
        idle until L{dialogEnded} is called as many times.
        """
        self._dialogUsages[callID] = self._dialogUsages.get(callID, 0) + 1
        if flow is not None and flow.connection is not None:
            self._carry(callID, flow.connection)

    def dialogEnded(self, callID: str) -> None:
        """
        A dialog usage L{dialogStarted} counted ended; with the last one
        its connections no longer carry the dialog.
        """
        count = self._dialogUsages.get(callID, 0)
        if count > 1:
            self._dialogUsages[callID] = count - 1
            return
        self._dialogUsages.pop(callID, None)
        for connection in self._dialogConnections.pop(callID, set()):
            connection.dialogs.discard(callID)

    def _carry(self, callID: str, connection: SIPStreamConnection) -> None:
        self._dialogConnections.setdefault(callID, set()).add(connection)
        connection.dialogs.add(callID)

    def observeDialog(
        self, message: SIPMessage, connection: SIPStreamConnection
    ) -> None:
        """
        A message passed on a connection: if its Call-ID is a live
        dialog's, the connection carries it (the peer may open another).
        """
        try:
            callID = message.callID
        except (HeaderError, SIPParseError):
            return
        if callID in self._dialogUsages and callID not in connection.dialogs:
            self._carry(callID, connection)

    def forgetDialogs(self, connection: SIPStreamConnection) -> None:
        """
        A connection was lost: it carries no dialog any more (the dialogs
        live on; another connection carries them once their messages pass
        on it).
        """
        for callID in connection.dialogs:
            connections = self._dialogConnections.get(callID)
            if connections is not None:
                connections.discard(connection)
                if not connections:
                    del self._dialogConnections[callID]
        connection.dialogs.clear()

    # -- receiving -----------------------------------------------------

    def datagramReceived(self, datagram: bytes, peer: Address) -> None:
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
            self.parseError(e, flow)
            return
        self.deliver(message, flow)

    def _oversized(self, datagram: bytes, flow: Flow) -> None:
        end = datagram.find(b"\r\n\r\n")
        try:
            head = parseHead(datagram[: end if end != -1 else self.maxMessageBytes])
        except SIPParseError as e:
            self.parseError(e, flow)
            return
        self.parseError(head.error(513, "Message Too Large"), flow)

    def parseError(self, error: SIPParseError, flow: Flow) -> None:
        """
        A malformed message arrived: answer a request that can be
        answered (400, 505, 513), drop the rest; both logged.
        """
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

    def deliver(self, message: SIPMessage, flow: Flow) -> None:
        """
        A message arrived on C{flow}: stamp a request's Via (RFC
        3581), hand it to the user.
        """
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


def _boundPort(listening: IListeningPort, requested: int) -> int:
    try:
        host = listening.getHost()
    except Exception:
        return requested
    port = getattr(host, "port", requested)
    return int(port) if port else requested


_DUMMY_URI = SIPURI("sip", "invalid")
