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

Not done here (hooks for later): RFC 5923 connection aliases, and
switching a large UDP request to TCP (section 18.1.1).
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
    IDelayedCall,
    IHandshakeListener,
    IListeningPort,
    IOpenSSLClientConnectionCreator,
    IPushProducer,
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

from stoxgw.limits import ConnectionLimits
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

#: The default cap on output written to a stream while the peer does not
#: read (beyond the 64 KiB of Twisted's write buffer): 1 MiB.
DEFAULT_MAX_OUTPUT_BYTES = 1 << 20

#: Seconds a request keeps its connection in use at most while its final
#: response has not passed (more than Timer C, RFC 3261 section 16.6 step
#: 11, and 64*T1).
TRANSACTION_HOLD = 200.0

#: Seconds a connection closed by a limit may take to flush before it is
#: aborted.
CLOSE_GRACE = 5.0

#: The most open transactions tracked per connection (the oldest go).
_MAX_TRANSACTIONS = 1024


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


@implementer(IHandshakeListener, IPushProducer)
class SIPStreamConnection(Protocol):
    """
    One TCP or TLS connection carrying SIP (RFC 3261 section 18.3 framing).

    It bounds what it holds for its peer (see the module docstring): it is
    the streaming producer of its own transport, and while Twisted pauses
    it (the write buffer is over 64 KiB) it stops reading from the peer;
    output written meanwhile beyond C{maxOutputBytes}, a pause longer than
    C{readTimeout}, or a message not complete C{readTimeout} seconds after
    its first octet aborts the connection; without a dialog, a transaction
    or a SIP message for C{idleTimeout} seconds it is closed.

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
    @ivar accepted: Whether a listener accepted the connection (the
        connection caps count only those).
    @ivar paused: Whether Twisted paused the connection (reading stopped
        until the peer has read what waits for it).
    @ivar dialogs: The Call-IDs of the dialogs the connection carries (see
        the module docstring); while there is one it is never closed as
        idle.
    """

    _log = Logger()

    def __init__(
        self,
        owner: SIPTransport,
        kind: TransportKind,
        verifiesPeer: bool = False,
        accepted: bool = False,
    ) -> None:
        self.owner = owner
        self.kind = kind
        self.verifiesPeer = verifiesPeer
        self.accepted = accepted
        self.peer = Address(kind, "0.0.0.0", 0)
        self.parser = SIPStreamParser(owner.maxMessageBytes)
        self.ready = False
        self.flow = Flow(self.peer, self)
        self.paused = False
        # The source host counted by the owner's connection caps, if any.
        self._admittedHost: str | None = None
        self._closing = False
        self._aborted = False
        self._lost = False
        # Octets written while paused (reset on resume).
        self._pausedOutput = 0
        self._lastActivity = 0.0
        self._idleCall: IDelayedCall | None = None
        self._readCall: IDelayedCall | None = None
        self._stallCall: IDelayedCall | None = None
        self._abortCall: IDelayedCall | None = None
        # Open transactions: "branch METHOD" -> when the request passed.
        self._transactions: dict[str, float] = {}
        # Call-IDs of the live dialogs this connection carries (see
        # SIPTransport.dialogStarted).
        self.dialogs: set[str] = set()

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

    @property
    def _transport(self) -> Any:
        """
        The transport, untyped (producer methods are not on L{ITransport}).
        """
        return self.transport

    def connectionMade(self) -> None:
        """
        Refuse the connection beyond the owner's connection caps; else turn
        Nagle off, become the transport's streaming producer, start the
        idle timer, and register a TCP connection for reuse now, a TLS one
        once its handshake has completed (L{handshakeCompleted}), so that
        nothing counts as sent over a TLS connection whose peer was not
        verified.
        """
        assert self.transport is not None
        self.peer = _peerOf(self.transport.getPeer(), self.kind)
        self.flow = Flow(self.peer, self)
        if self.accepted and not self.owner._admit(self):
            self.abort()
            return
        if ITCPTransport.providedBy(self.transport):
            try:
                self.transport.setTcpNoDelay(True)
            except Exception:  # pragma: no cover - platform dependent
                pass
        try:
            self._transport.registerProducer(self, True)
        except Exception as e:
            self._log.debug(
                "SIP transport to {peer} refuses a producer: {error}",
                peer=str(self.peer),
                error=e,
            )
        self._lastActivity = self.owner.reactor.seconds()
        self._scheduleIdle(self.owner.idleTimeout)
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
        if self._closing or (
            self.transport is not None
            and getattr(self.transport, "disconnecting", False)
        ):
            return
        self._ready()

    def _ready(self) -> None:
        self.ready = True
        self.owner._connectionMade(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Forget the connection (timers, dialogs, its place under the
        connection caps); if it never became usable (a failed TLS
        handshake), fail what waited for it.
        """
        self._lost = True
        for name in ("_idleCall", "_readCall", "_stallCall", "_abortCall"):
            call = getattr(self, name)
            setattr(self, name, None)
            if call is not None and call.active():
                call.cancel()
        self._transactions.clear()
        self.owner._forgetDialogs(self)
        if self._admittedHost is not None:
            self.owner._release(self)
        wasReady, self.ready = self.ready, False
        if wasReady:
            self.owner._connectionLost(self)
        elif isinstance(self.factory, _StreamClientFactory):
            self.owner._connectFailed(self.factory, reason)
        elif self.kind is TransportKind.TLS and not self._closing:
            # An incoming TLS connection whose handshake failed, e.g. on a
            # client certificate that does not verify.
            self._log.warn(
                "SIP TLS handshake with {peer} failed: {error}",
                peer=str(self.peer),
                error=reason.getErrorMessage(),
            )

    # -- closing -----------------------------------------------------------

    def close(self) -> None:
        """
        Close gracefully: stop being the transport's producer (Twisted does
        not close a transport while a producer is registered) and let what
        is buffered go; abort after L{CLOSE_GRACE} seconds if the peer does
        not read it.
        """
        transport = self._transport
        if transport is None or self._closing or self._lost:
            return
        self._closing = True
        try:
            transport.unregisterProducer()
        except Exception:
            pass
        transport.loseConnection()
        if not self._lost and self._abortCall is None:
            self._abortCall = self.owner.reactor.callLater(CLOSE_GRACE, self.abort)

    def abort(self) -> None:
        """
        Close at once, dropping whatever is buffered for the peer.
        """
        self._abortCall = None
        transport = self._transport
        if transport is None or self._lost or self._aborted:
            return
        self._closing = True
        self._aborted = True
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:  # pragma: no cover - every stream transport has it
            transport.loseConnection()

    # -- IPushProducer -------------------------------------------------------

    def pauseProducing(self) -> None:
        """
        Twisted's write buffer is full: stop reading from the peer until it
        has drained (a peer that does not read gets nothing more read from
        it), and abort if that lasts C{readTimeout} seconds.
        """
        if self.paused or self._lost:
            return
        self.paused = True
        self._pausedOutput = 0
        if self.ready:
            # Not during a TLS handshake: it needs the peer's octets.
            self._transport.pauseProducing()
        timeout = self.owner.readTimeout
        if timeout is not None and self._stallCall is None:
            self._stallCall = self.owner.reactor.callLater(timeout, self._stalled)

    def resumeProducing(self) -> None:
        """
        The write buffer has drained: read again.
        """
        if not self.paused:
            return
        self.paused = False
        self._pausedOutput = 0
        call, self._stallCall = self._stallCall, None
        if call is not None and call.active():
            call.cancel()
        if not self._lost and not self._closing:
            self._transport.resumeProducing()

    def stopProducing(self) -> None:
        """
        The transport is going away; nothing to do.
        """

    def _stalled(self) -> None:
        self._stallCall = None
        self._log.warn(
            "SIP peer {peer} read nothing for {timeout} s: connection closed",
            peer=str(self.peer),
            timeout=self.owner.readTimeout,
        )
        self.abort()

    # -- timers ----------------------------------------------------------------

    def _scheduleIdle(self, delay: float | None) -> None:
        if delay is None or self._lost:
            return
        self._idleCall = self.owner.reactor.callLater(max(delay, 0.0), self._idleCheck)

    def _idleCheck(self) -> None:
        """
        Close the connection if it has been idle for C{idleTimeout}
        seconds and carries no dialog or transaction; else look again when
        it could be.
        """
        self._idleCall = None
        timeout = self.owner.idleTimeout
        if timeout is None or self._lost or self._closing:
            return
        now = self.owner.reactor.seconds()
        remaining = self._lastActivity + timeout - now
        if remaining > 0:
            self._scheduleIdle(remaining)
            return
        if self.inUse(now):
            self._scheduleIdle(timeout)
            return
        self._log.info(
            "SIP {transport} connection with {peer} idle for {timeout} s: closed",
            transport=self.kind.value,
            peer=str(self.peer),
            timeout=timeout,
        )
        self.close()

    def inUse(self, now: float | None = None) -> bool:
        """
        Whether the connection carries a dialog, or a transaction younger
        than L{TRANSACTION_HOLD} seconds whose final response has not
        passed.
        """
        if self.dialogs:
            return True
        if not self._transactions:
            return False
        if now is None:
            now = self.owner.reactor.seconds()
        for key, started in list(self._transactions.items()):
            if now - started < TRANSACTION_HOLD:
                return True
            del self._transactions[key]
        return False

    def _readTimer(self, restart: bool) -> None:
        """
        Run the read timer while part of a message is held: from the first
        octet of a message (L{restart} when a message was completed).
        """
        timeout = self.owner.readTimeout
        if timeout is None:
            return
        call = self._readCall
        if self.parser.messagePending and not self._lost:
            if call is not None and not restart:
                return
            if call is not None and call.active():
                call.cancel()
            self._readCall = self.owner.reactor.callLater(timeout, self._readTimedOut)
        elif call is not None:
            self._readCall = None
            if call.active():
                call.cancel()

    def _readTimedOut(self) -> None:
        self._readCall = None
        self._log.warn(
            "SIP peer {peer} did not complete a message within {timeout} s:"
            " connection closed",
            peer=str(self.peer),
            timeout=self.owner.readTimeout,
        )
        self.abort()

    # -- sending and receiving -----------------------------------------------

    def send(self, data: bytes, message: SIPMessage | None = None) -> None:
        """
        Write octets.

        @param message: The message they serialize, if any (the transport
            follows dialogs and transactions, see L{observe}).
        @raise TransportError: The connection is closed.
        """
        if not self.ready or self.transport is None or self._closing:
            raise TransportError(f"connection to {self.peer} is closed")
        if message is not None:
            self.observe(message)
        self._write(data)

    def _write(self, data: bytes) -> None:
        """
        Write, counting what is written while paused; beyond
        C{maxOutputBytes} the connection is aborted.
        """
        if self._aborted:
            return
        if self.paused:
            self._pausedOutput += len(data)
            if self._pausedOutput > self.owner.maxOutputBytes:
                self._log.warn(
                    "SIP peer {peer} does not read: more than {limit} octets"
                    " wait for it, connection closed",
                    peer=str(self.peer),
                    limit=self.owner.maxOutputBytes,
                )
                self.abort()
                return
        assert self.transport is not None
        self.transport.write(data)

    def observe(self, message: SIPMessage) -> None:
        """
        Follow a message sent or received on this connection: it counts as
        traffic (idle timeout), a request opens a transaction until its
        final response passes, and a live dialog's Call-ID makes the
        connection carry that dialog (L{SIPTransport.dialogStarted}).
        """
        now = self.owner.reactor.seconds()
        self._lastActivity = now
        try:
            branch = message.topVia.branch or ""
            method = message.cseq.method
        except (HeaderError, SIPParseError):
            return
        key = f"{branch} {method}"
        if isinstance(message, SIPRequest):
            if method != "ACK":
                transactions = self._transactions
                transactions.pop(key, None)
                if len(transactions) >= _MAX_TRANSACTIONS:
                    del transactions[next(iter(transactions))]
                transactions[key] = now
        elif message.status >= 200:
            self._transactions.pop(key, None)
        self.owner._observeDialog(message, self)

    def dataReceived(self, data: bytes) -> None:
        """
        Frame, parse and deliver; never raises.
        """
        try:
            events = self.parser.feed(data)
        except Exception as e:  # pragma: no cover - the parser never raises
            self._log.failure("SIP stream parser failed", peer=str(self.peer), error=e)
            return
        completed = False
        for event in events:
            if self._lost or self._aborted:
                return
            try:
                if self._event(event):
                    completed = True
            except Exception as e:
                self._log.failure(
                    "Unhandled error on SIP message from {peer}",
                    peer=str(self.peer),
                    error=e,
                )
        self._readTimer(completed)

    def _event(self, event: object) -> bool:
        """
        Handle one parser event.

        @return: Whether it completed a message.
        """
        if event is KeepAlive.PING:
            # RFC 5626 section 3.5.1, before any trust check: bounded by the
            # pause of reading (see pauseProducing).
            if self.transport is not None and not self._closing:
                self._write(PONG_BYTES)
            return False
        if event is KeepAlive.PONG:
            return False
        if isinstance(event, SIPParseError):
            self.owner._parseError(event, self.flow)
            if event.fatal:
                self.close()
            return True
        assert isinstance(event, (SIPRequest, SIPResponse))
        self.observe(event)
        self.owner._deliver(event, self.flow)
        return True


class _StreamServerFactory(ServerFactory):
    noisy = False

    def __init__(
        self, owner: SIPTransport, kind: TransportKind, verifiesPeer: bool = False
    ) -> None:
        self.owner = owner
        self.kind = kind
        self.verifiesPeer = verifiesPeer

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        return SIPStreamConnection(
            self.owner, self.kind, self.verifiesPeer, accepted=True
        )


class _StreamClientFactory(ClientFactory):
    """
    One outgoing connection attempt; sends what waits for it once up.
    """

    noisy = False

    def __init__(self, owner: SIPTransport, address: Address) -> None:
        self.owner = owner
        self.address = address
        self.waiting: list[tuple[SIPMessage, bytes, Deferred[Flow]]] = []
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
        self._connecting: dict[Address, _StreamClientFactory] = {}
        self.idleTimeout = idleTimeout
        self.readTimeout = readTimeout
        self.maxOutputBytes = maxOutputBytes
        self.limits: ConnectionLimits | None = None
        if maxConnectionsPerAddress is not None or maxConnections is not None:
            self.limits = ConnectionLimits(
                maxConnectionsPerAddress or (1 << 62), maxConnections or (1 << 62)
            )
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
        factory.waiting.append((message, data, d))
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
            for message, data, d in waiting:
                try:
                    connection.send(data, message)
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
        for _, _, d in waiting:
            d.errback(_failure(TransportError(reason.getErrorMessage())))

    # -- limits ----------------------------------------------------------

    def _admit(self, connection: SIPStreamConnection) -> bool:
        """
        Count an accepted connection under the caps, or refuse it (logged
        once per source address per minute).

        @return: Whether it may stay.
        """
        limits = self.limits
        if limits is None:
            return True
        host = connection.peer.host
        refusal = limits.admit(host)
        if refusal is None:
            connection._admittedHost = host
            return True
        if limits.shouldLog(host, self.reactor.seconds()):
            self._log.warn(
                "Refused SIP {transport} connection from {peer}: {limit} cap"
                " ({perAddress} per address, {total} in all) reached;"
                " further refusals from it are not logged for a minute",
                transport=connection.kind.value,
                peer=str(connection.peer),
                limit=refusal.value,
                perAddress=limits.perAddress,
                total=limits.total,
            )
        return False

    def _release(self, connection: SIPStreamConnection) -> None:
        host, connection._admittedHost = connection._admittedHost, None
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

    def _observeDialog(
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

    def _forgetDialogs(self, connection: SIPStreamConnection) -> None:
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
