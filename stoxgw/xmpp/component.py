# -*- test-case-name: tests.xmpp.test_component,tests.xmpp.test_componentflow -*-
"""
XEP-0114 component links: one authenticated stream per served domain.

Each L{ComponentLink} is a service holding a wokkel L{StreamManager} (to which
the XMPP handlers of the gateway are added) and a L{ClientService} that keeps
the TCP connection up, reconnecting with exponential backoff and jitter.

A rejected handshake (wrong secret, unknown component) is logged as an error
naming the domain and server, and it does not reset the backoff: the link
keeps retrying at growing intervals, never in a tight loop, so that fixing the
secret on the server side is enough to bring it up.

Stanzas sent while the link is down wait in a bounded queue; once it is full,
L{BoundedStreamManager.send} raises L{LinkDown} so the caller can answer the
stanza's sender with an error (nothing is dropped in silence).

An XMPP server that does not read (issue 11; C{docs/limits.md}): the stream
manager is the streaming producer of the link's transport, so Twisted tells
it when more than 64 KiB wait in the transport.  That alone does not mean
the server is not reading: Twisted's TCP transport only writes to its socket
between reactor turns, so any turn that writes more than 64 KiB (a burst of
SIP messages read from many connections at once) pauses its producer.  The
stream manager therefore asks the transport to write at once
(C{IWriteDescriptor.doWrite}, what the reactor would do at the end of the
turn); if the socket takes it all, Twisted resumes the producer at once and
the burst goes on.  Only when the socket is full (the kernel buffers hold
what the server has not read) is the link congested: from then on stanzas
wait in the same bounded queue as while the link is down (and L{LinkDown}
is raised once it is full) instead of piling up in the transport; they go
out, in order, when the server has read.  Pausing the reading of the stream
would not help, since what the gateway sends the server comes mostly from
the SIP side.  If the server reads nothing for C{writeTimeout} seconds
after the socket filled, it is taken for hung: the connection is aborted
(dropping what waited in the transport) and made again, the queued stanzas
going out on the new stream.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import (
    IPushProducer,
    IReactorTCP,
    IReactorTime,
    IWriteDescriptor,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error, xmlstream
from twisted.words.protocols.jabber.component import componentFactory
from wokkel.subprotocols import StreamManager, XMPPHandler
from zope.interface import Interface, implementer


class LinkDown(Exception):
    """
    A stanza could not be sent: the component link is down and its queue full.
    """


class ILinkObserver(Interface):
    """
    Told when a component link comes up or goes down (the interworking layer
    uses this to rejoin rooms after a reconnection).
    """

    def linkUp(domain: str) -> None:
        """
        The component link for C{domain} is authenticated and usable.
        """

    def linkDown(domain: str, reason: Failure) -> None:
        """
        The component link for C{domain} was lost.
        """


@implementer(IPushProducer)
class _LinkFlow:
    """
    The streaming producer registered on one component connection's
    transport: tells its stream manager when Twisted's write buffer is full
    and when it has drained.
    """

    def __init__(self, manager: BoundedStreamManager, stream: Any) -> None:
        self.manager = manager
        self.stream = stream

    def pauseProducing(self) -> None:
        self.manager._paused(self.stream)

    def resumeProducing(self) -> None:
        self.manager._resumed(self.stream)

    def stopProducing(self) -> None:
        pass


class BoundedStreamManager(StreamManager):
    """
    A wokkel stream manager whose queue of stanzas waiting for the link is
    bounded, and which holds stanzas back (in the same bounded queue) while
    the server does not read (see the module docstring).

    @ivar queueSize: the most stanzas held while the link is down or the
        server does not read.
    @ivar writeTimeout: seconds the server may read nothing while output
        waits for it before the connection is aborted, or L{None}.
    @ivar congested: whether output waits for a server that does not read:
        Twisted paused the link's producer and the socket did not take what
        was buffered.
    """

    _log = Logger()

    def __init__(
        self,
        factory: Any,
        reactor: IReactorTime,
        queueSize: int,
        writeTimeout: float | None = None,
    ) -> None:
        super().__init__(factory, reactor=reactor)
        self.queueSize = queueSize
        self.writeTimeout = writeTimeout
        self.congested = False
        self.peer = "?"
        self._held: list[Any] = []
        self._stall: Any = None
        # Twisted paused the producer and has not resumed it.
        self._pausedByTransport = False
        # Inside a write asked for by _paused, or a release of held stanzas.
        self._flushing = False
        self._releasing = False

    def send(self, obj: Any) -> None:
        """
        Send a stanza now, or queue it until the link is up and the server
        reads.

        @raise LinkDown: the link is down, or the server does not read,
            and the queue is full.
        """
        if self._initialized and self.congested:
            if len(self._held) >= self.queueSize:
                raise LinkDown(
                    f"XMPP server not reading, {self.queueSize} stanzas already queued"
                )
            self._held.append(obj)
            return
        if not self._initialized and len(self._packetQueue) >= self.queueSize:
            raise LinkDown(f"component link down, {self.queueSize} stanzas already queued")
        super().send(obj)

    def _connected(self, xs: Any) -> None:
        """
        A connection is made: become the streaming producer of its
        transport, so that Twisted says when the server stops reading.
        """
        self.congested = False
        self._pausedByTransport = False
        transport = getattr(xs, "transport", None)
        register = getattr(transport, "registerProducer", None)
        if register is not None:
            try:
                register(_LinkFlow(self, xs), True)
            except Exception as e:
                self._log.debug(
                    "Component transport refuses a producer: {error}", error=e
                )
        super()._connected(xs)

    def _disconnected(self, reason: Any) -> None:
        """
        The stream is gone: stanzas held back for a server that did not
        read go out first on the next stream.
        """
        self._stopStallTimer()
        self.congested = False
        self._pausedByTransport = False
        held, self._held = self._held, []
        self._packetQueue[:0] = held
        super()._disconnected(reason)

    def _paused(self, stream: Any) -> None:
        """
        Twisted paused the producer of C{stream}'s transport: more than its
        C{bufferSize} waits there.  Ask the transport to write now; if the
        socket takes it all, Twisted resumes the producer from within that
        write and the link is not congested.
        """
        if stream is not self.xmlstream:
            return
        self._pausedByTransport = True
        if self.congested or self._flushing:
            return
        transport = getattr(stream, "transport", None)
        if IWriteDescriptor.providedBy(transport) and not getattr(
            transport, "disconnecting", False
        ):
            self._flushing = True
            try:
                # What doWrite returns (a lost connection) the reactor sees
                # again on its own next doWrite, and handles.
                transport.doWrite()
            except Exception:
                self._log.failure("Writing to XMPP server {peer}", peer=self.peer)
            finally:
                self._flushing = False
        if not self._pausedByTransport or stream is not self.xmlstream:
            return
        self.congested = True
        self._log.debug(
            "XMPP server {peer} does not read: stanzas are held", peer=self.peer
        )
        if self.writeTimeout is not None and self._stall is None:
            self._stall = self._reactor.callLater(self.writeTimeout, self._stalled)

    def _resumed(self, stream: Any) -> None:
        """
        Twisted resumed the producer of C{stream}'s transport: everything
        buffered was written.  The held stanzas go out, in order, until
        the server stops reading again.
        """
        if stream is not self.xmlstream:
            return
        self._pausedByTransport = False
        self.congested = False
        self._stopStallTimer()
        if self._releasing or self._flushing:
            return
        self._releasing = True
        try:
            held = self._held
            while held and not self.congested and self._initialized:
                self.xmlstream.send(held.pop(0))
        finally:
            self._releasing = False

    def _stopStallTimer(self) -> None:
        stall, self._stall = self._stall, None
        if stall is not None and stall.active():
            stall.cancel()

    def _stalled(self) -> None:
        """
        The server read nothing for C{writeTimeout} seconds: drop the
        connection (the link is made again).
        """
        self._stall = None
        stream = self.xmlstream
        self._log.error(
            "XMPP server {peer} read nothing for {timeout} s: component link"
            " dropped, {held} stanzas wait for the next one",
            peer=self.peer,
            timeout=self.writeTimeout,
            held=len(self._held),
        )
        transport = getattr(stream, "transport", None)
        if transport is None:
            return
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:  # pragma: no cover - TCP transports have it
            transport.loseConnection()


class _LinkMonitor(XMPPHandler):
    """
    Watches the stream for its link: logs it coming up and going down,
    recognises a rejected handshake, and tells the link's observers.
    """

    _log = Logger()

    def __init__(self, link: ComponentLink) -> None:
        super().__init__()
        self.link = link
        self._rejected: error.StreamError | None = None
        self.up = False

    def connectionMade(self) -> None:
        self._rejected = None
        self.xmlstream.addObserver(xmlstream.STREAM_ERROR_EVENT, self._streamError)

    def _streamError(self, reason: Failure) -> None:
        value = reason.value
        if isinstance(value, error.StreamError) and value.condition in (
            "not-authorized",
            "host-unknown",
            "improper-addressing",
        ):
            self._rejected = value

    def connectionInitialized(self) -> None:
        self.up = True
        self.link.rejections = 0
        self._log.info(
            "XMPP component link up: {domain} at {peer}",
            domain=self.link.domain,
            peer=self.link.peer,
        )
        for observer in list(self.link.observers):
            observer.linkUp(self.link.domain)

    def connectionLost(self, reason: Failure) -> None:
        if self._rejected is not None:
            self.link.rejections += 1
            self._log.error(
                "XMPP server {peer} rejected the component handshake for {domain}"
                " ({condition}): check [xmpp] secret and the server's component"
                " configuration; retrying in the background",
                peer=self.link.peer,
                domain=self.link.domain,
                condition=self._rejected.condition,
            )
            self._rejected = None
            return
        if self.up:
            self.up = False
            if self.link.running:
                self._log.warn(
                    "XMPP component link down: {domain} at {peer}: {error}",
                    domain=self.link.domain,
                    peer=self.link.peer,
                    error=reason.getErrorMessage(),
                )
            else:
                self._log.info(
                    "XMPP component link closed: {domain} at {peer}",
                    domain=self.link.domain,
                    peer=self.link.peer,
                )
            for observer in list(self.link.observers):
                observer.linkDown(self.link.domain, reason)


class ComponentLink(MultiService):
    """
    The component connection for one domain.

    @ivar domain: the component domain (e.g. C{sip.example}).
    @ivar streamManager: add XMPP handlers for this domain to it.
    @ivar observers: L{ILinkObserver}s told of the link's state.
    @ivar rejections: handshakes rejected in a row (feeds the backoff).
    @ivar quickAck: whether each connection gets L{armQuickAck}.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        domain: str,
        server: str,
        port: int,
        secret: str,
        queueSize: int = 1000,
        maxDelay: float = 60.0,
        jitter: Callable[[], float] = random.random,
        writeTimeout: float | None = None,
        quickAck: bool = True,
    ) -> None:
        super().__init__()
        self.setName(domain)
        self.quickAck = quickAck
        self.domain = domain
        self.peer = f"{server}:{port}"
        self.observers: list[ILinkObserver] = []
        self.rejections = 0
        factory = componentFactory(domain, secret)
        self.streamManager = BoundedStreamManager(
            factory, reactor, queueSize, writeTimeout=writeTimeout
        )
        self.streamManager.peer = self.peer
        _LinkMonitor(self).setHandlerParent(self.streamManager)
        self._backoff = backoffPolicy(
            initialDelay=1.0, maxDelay=maxDelay, factor=2.0, jitter=jitter
        )
        endpoint = HostnameEndpoint(reactor, server, port, timeout=10)
        self.clientService = ClientService(
            endpoint,
            factory,
            retryPolicy=self._retryDelay,
            clock=reactor,
            prepareConnection=self._prepareConnection,
        )
        self.clientService.setServiceParent(self)

    @property
    def up(self) -> bool:
        """
        Whether the link is authenticated and stanzas go out now.
        """
        return bool(self.streamManager._initialized)

    def _retryDelay(self, failedAttempts: int) -> float:
        """
        Exponential backoff with jitter; rejected handshakes count as failed
        attempts too, although their TCP connection succeeded.
        """
        delay: float = self._backoff(max(failedAttempts, self.rejections))
        return delay

    def _prepareConnection(self, protocol: Any) -> None:
        transport = getattr(protocol, "transport", None)
        if transport is not None and hasattr(transport, "setTcpNoDelay"):
            transport.setTcpNoDelay(True)
        if self.quickAck:
            armQuickAck(protocol)


def armQuickAck(protocol: Any) -> bool:
    """
    Make the component connection acknowledge what it receives at once
    (Linux C{TCP_QUICKACK}), re-armed after every read (issue 12).

    Why: XMPP servers commonly leave Nagle's algorithm on (Prosody 0.12 does
    unless C{network_settings = { nagle = false }}).  A server that writes
    two stanzas to us in a row (a groupchat message fanned out to two SIP
    occupants) then holds the second one until we ACK the first, and our
    kernel delays that ACK by up to 40 ms: XMPP -> SIP p50 42 ms instead of
    about 1 ms (bench/README.md, W1).  Quick-ACK mode is not sticky on
    Linux (the kernel drops back to delayed ACKs on its own), so it is set
    again each time the connection reads, which also sends any ACK still
    pending.  Nothing changes where C{TCP_QUICKACK} does not exist.

    @param protocol: A connected protocol whose transport has C{getHandle}
        (a TCP socket); its C{dataReceived} is wrapped.
    @return: whether quick ACKs are armed.
    """
    option = getattr(socket, "TCP_QUICKACK", None)
    getHandle = getattr(getattr(protocol, "transport", None), "getHandle", None)
    if option is None or getHandle is None:
        return False
    handle = getHandle()
    if not isinstance(handle, socket.socket):
        return False
    try:
        handle.setsockopt(socket.IPPROTO_TCP, option, 1)
    except OSError:
        return False
    received = protocol.dataReceived

    def dataReceived(data: bytes) -> None:
        try:
            handle.setsockopt(socket.IPPROTO_TCP, option, 1)
        except OSError:
            pass
        received(data)

    protocol.dataReceived = dataReceived
    return True


def buildLinks(
    reactor: IReactorTCP,
    domains: tuple[str, ...],
    server: str,
    port: int,
    secret: str,
    queueSize: int,
    maxDelay: float,
    writeTimeout: float | None = None,
) -> list[ComponentLink]:
    """
    One L{ComponentLink} per served domain.

    @param writeTimeout: See L{BoundedStreamManager.writeTimeout} (C{[xmpp]
        write_timeout}).
    """
    return [
        ComponentLink(
            reactor,
            domain,
            server,
            port,
            secret,
            queueSize,
            maxDelay,
            writeTimeout=writeTimeout,
        )
        for domain in domains
    ]


def probeComponent(
    reactor: Any,
    domain: str,
    server: str,
    port: int,
    secret: str,
    timeout: float = 10.0,
) -> Deferred[str | None]:
    """
    Try the XEP-0114 handshake for one domain once, then disconnect.

    Used by C{--check-config --probe}: it tells an operator whether the XMPP
    server is reachable and accepts the component secret, without starting
    the gateway.

    @return: a L{Deferred} firing with L{None} when the server accepted the
        handshake, or with a sentence saying what went wrong.
    """
    result: Deferred[str | None] = Deferred()
    peer = f"{server}:{port}"
    state: dict[str, Any] = {"condition": None, "stream": None}

    def finish(outcome: str | None) -> None:
        if result.called:
            return
        if timer.active():
            timer.cancel()
        stream = state["stream"]
        if stream is not None and stream.transport is not None:
            stream.transport.loseConnection()
        result.callback(outcome)

    def connected(stream: Any) -> None:
        state["stream"] = stream

    def authenticated(stream: Any) -> None:
        finish(None)

    def streamError(reason: Failure) -> None:
        value = reason.value
        if isinstance(value, error.StreamError):
            state["condition"] = value.condition

    def ended(reason: Any) -> None:
        condition = state["condition"]
        if condition is not None:
            finish(f"XMPP server {peer} rejected the component handshake for {domain} ({condition})")
        else:
            finish(f"XMPP server {peer} closed the stream for {domain} before accepting it")

    factory = componentFactory(domain, secret)
    factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, connected)
    factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, authenticated)
    factory.addBootstrap(xmlstream.STREAM_ERROR_EVENT, streamError)
    factory.addBootstrap(xmlstream.STREAM_END_EVENT, ended)
    timer = reactor.callLater(
        timeout, lambda: finish(f"no answer from XMPP server {peer} for {domain} within {timeout:g} s")
    )
    endpoint = HostnameEndpoint(reactor, server, port, timeout=timeout)
    connecting = endpoint.connect(factory)
    connecting.addErrback(
        lambda failure: finish(f"cannot connect to XMPP server {peer}: {failure.getErrorMessage()}")
    )
    return result
