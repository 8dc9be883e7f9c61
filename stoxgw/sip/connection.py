# -*- test-case-name: tests.sip.test_transportlimits,tests.sip.test_transport -*-
"""
One TCP or TLS connection carrying SIP (RFC 3261 section 18.3 framing,
RFC 5626 CRLF keep-alives), with the bounds of C{docs/limits.md}: output
while the peer does not read, read and idle timeouts (see
L{stoxgw.sip.transport} for the whole picture).

L{SIPStreamConnection} reports to its owner, the L{SIPTransport
<stoxgw.sip.transport.SIPTransport>}, through the methods the transport
documents as its connections' (C{admit}, C{release}, C{connectionMade},
C{connectionLost}, C{connectFailed}, C{deliver}, C{parseError},
C{observeDialog}, C{forgetDialogs}).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from OpenSSL import SSL
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IConnector,
    IDelayedCall,
    IHandshakeListener,
    IPushProducer,
    ITCPTransport,
)
from twisted.internet.protocol import ClientFactory, Protocol, ServerFactory, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from stoxgw.sip.flows import Address, Flow, TransportError, TransportKind
from stoxgw.sip.framing import PONG_BYTES, KeepAlive, SIPStreamParser
from stoxgw.sip.headers import HeaderError
from stoxgw.sip.message import (
    SIPMessage,
    SIPParseError,
    SIPRequest,
    SIPResponse,
)

if TYPE_CHECKING:
    from stoxgw.sip.transport import SIPTransport

__all__ = [
    "DEFAULT_MAX_OUTPUT_BYTES",
    "TRANSACTION_HOLD",
    "CLOSE_GRACE",
    "SIPStreamConnection",
    "StreamServerFactory",
    "StreamClientFactory",
]

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
        self.admittedHost: str | None = None
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
        if self.accepted and not self.owner.admit(self):
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
        self.owner.connectionMade(self)

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
        self.owner.forgetDialogs(self)
        if self.admittedHost is not None:
            self.owner.release(self)
        wasReady, self.ready = self.ready, False
        if wasReady:
            self.owner.connectionLost(self)
        elif isinstance(self.factory, StreamClientFactory):
            self.owner.connectFailed(self.factory, reason)
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
        self.owner.observeDialog(message, self)

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
            self.owner.parseError(event, self.flow)
            if event.fatal:
                self.close()
            return True
        assert isinstance(event, (SIPRequest, SIPResponse))
        self.observe(event)
        self.owner.deliver(event, self.flow)
        return True


class StreamServerFactory(ServerFactory):
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


class StreamClientFactory(ClientFactory):
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
        self.owner.connectFailed(self, reason)
