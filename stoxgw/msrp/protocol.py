# -*- test-case-name: tests.msrp.test_protocol,tests.msrp.test_connectionlimits -*-
"""
MSRP connections on Twisted: bytes <-> wire objects, dispatch, and the
per-connection send scheduler (RFC 4975 sections 5.4, 7, 10).

An L{MSRPConnection} parses the byte stream with L{MSRPParser} and:

  - answers recoverable parse errors with their status (unless the request
    said C{Failure-Report: no} or is a REPORT, R-139, R-142) and closes the
    connection on fatal framing errors;
  - hands requests to the session bound to this connection whose local URI
    is the request's single To-Path URI; an unbound session found through
    the L{stoxgw.msrp.interfaces.IMSRPSessionRegistry} is bound now
    (R-144); an unknown URI gets 481 (R-143), a session bound to another
    connection 506 (R-144), an unknown method 501 (R-148);
  - hands responses to the pending client transaction with their transaction
    id.

Outgoing traffic goes through a scheduler (L{stoxgw.msrp.scheduler}, a
base of L{MSRPConnection}): responses and REPORTs (the I{priority} queue)
always go before the next chunk of any SEND (R-135); the messages of each
session wait in a queue of their own (so one session's messages keep
their order) and the sessions take turns, one chunk each.
SEND bodies are cut lazily, at most L{MSRPConnection.chunkSize} octets per
chunk (R-134, R-135), so a large body is held once, by its sender, and only
the chunk being written is copied.  The connection is a streaming producer
for its transport: when the transport's buffer is full it pauses, and
nothing more is serialized until the transport drains.

Bounded output (issue 11; C{docs/limits.md}): while paused, SEND chunks
wait in their sources (the bodies are held once anyway), so what grows is
only what the connection owes the peer in answer to what it reads:
responses and REPORTs, queued as bytes and counted.  Beyond
L{MSRPConnection.maxQueuedBytes} the peer is sending requests and not
reading their answers, and the connection is aborted (its buffer dropped,
its sessions failed, R-145).  Reading is deliberately I{not} paused as
the SIP transport does: MSRP carries bulk data both ways on one
connection, and two peers that each stopped reading while their own
output is blocked would wait for each other forever; a peer that reads
keeps the queue short, since the scheduler writes responses before any
further chunk (R-135).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Sequence

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from stoxgw.msrp.chunks import DEFAULT_CHUNK_SIZE, ChunkSource
from stoxgw.msrp.fastpath import FastReceiving
from stoxgw.msrp.interfaces import IMSRPConnectionUser, IMSRPSessionRegistry
from stoxgw.msrp.message import (
    END_LINE_DASHES,
    FailureReport,
    MSRPMethod,
    MSRPParseError,
    MSRPRequest,
    MSRPResponse,
    isIdent,
)
from stoxgw.msrp.parser import (
    DEFAULT_MAX_CHUNK_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    MSRPEvent,
    MSRPParser,
)
from stoxgw.msrp.reports import reasonPhrase, responseTo, responseToError
from stoxgw.msrp.scheduler import PendingTransaction, Scheduling
from stoxgw.msrp.uri import MSRPURI

__all__ = ["MSRPConnection"]

_SEND = MSRPMethod.SEND.value
_KNOWN_METHODS = frozenset(method.value for method in MSRPMethod)
_REPORT = MSRPMethod.REPORT.value
_CACHE_SIZE = 256

DEFAULT_MAX_QUEUED_BYTES = 1 << 20
"""
The most octets of responses and REPORTs a connection queues for a peer
that does not read them (beyond the transport's own 64 KiB buffer): 1 MiB.
"""

CLOSE_GRACE = 5.0
"""
Seconds a paused connection closed with L{MSRPConnection.disconnect} may
take to send what is buffered before it is aborted (when it has a
C{clock}).
"""


@implementer(IPushProducer)
class MSRPConnection(FastReceiving, Scheduling, Protocol):
    """
    One MSRP transport connection (TCP or TLS), shared by the sessions bound
    to it.

    @ivar registry: Where unknown To-Path URIs are looked up, or L{None}.
    @ivar chunkSize: The largest body of an outgoing SEND chunk.
    @ivar closeWhenIdle: Whether to close the connection when its last
        session detaches (RFC 4975 section 5.4: not while sessions use it).
    @ivar peer: The peer address as text, for logs.
    @ivar maxQueuedBytes: The most octets of responses and REPORTs queued
        while the transport is full; beyond, the connection is aborted
        (see the module docstring).
    @ivar clock: An L{IReactorTime} for the abort that follows a
        L{disconnect} the peer does not let finish, or L{None}.
    """

    clock: Any = None

    _log = Logger()

    #: Requests for unknown sessions answered 481 on this connection (a
    #: class default: only a connection that gets one has its own, so the
    #: common connection keeps its 30 attributes, see L{FastReceiving}).
    _unknownSessions = 0

    def __init__(
        self,
        registry: IMSRPSessionRegistry | None = None,
        chunkSize: int = DEFAULT_CHUNK_SIZE,
        maxChunkBytes: int = DEFAULT_MAX_CHUNK_BYTES,
        maxHeaderBytes: int = DEFAULT_MAX_HEADER_BYTES,
        closeWhenIdle: bool = True,
        maxQueuedBytes: int = DEFAULT_MAX_QUEUED_BYTES,
        fastPath: bool = True,
    ) -> None:
        """
        @param registry: See L{registry}.
        @param chunkSize: See L{chunkSize}.
        @param maxChunkBytes: The largest incoming chunk body (413 beyond).
        @param maxHeaderBytes: The largest incoming header block (400 beyond).
        @param closeWhenIdle: See L{closeWhenIdle}.
        @param maxQueuedBytes: See L{maxQueuedBytes}.
        @param fastPath: Whether reads go through the receive fast path
            (L{stoxgw.msrp.fastpath}); without it every byte goes through
            the parser (the tests compare both).
        """
        self.registry = registry
        self.chunkSize = chunkSize
        self.closeWhenIdle = closeWhenIdle
        self.maxQueuedBytes = maxQueuedBytes
        self.peer = "?"
        self._parser = MSRPParser(maxHeaderBytes, maxChunkBytes)
        self._sessions: dict[MSRPURI, IMSRPConnectionUser] = {}
        self._pending: dict[str, PendingTransaction] = {}
        # Responses and REPORTs waiting for the transport, serialized, and
        # their total size.
        self._priority: deque[bytes] = deque()
        self._queuedBytes = 0
        self._aborted = False
        self._closing = False
        self._abortCall: Any = None
        # Hot-path caches, keyed by object identity (the parser hands out
        # the same path tuples for repeated path headers); each entry keeps
        # its key object alive so that the id cannot be reused meanwhile.
        self._routes: dict[int, tuple[MSRPURI, IMSRPConnectionUser]] = {}
        self._uriBytes: dict[int, tuple[MSRPURI, bytes]] = {}
        # (id(fromPath), id(toPath), code, SEND?) -> (fromPath, toPath, the
        # response bytes between the transaction id and the end-line's id).
        self._responseMiddles: dict[
            tuple[int, int, int, bool],
            tuple[tuple[MSRPURI, ...], tuple[MSRPURI, ...], bytes],
        ] = {}
        # While dataReceived runs: the responses written so far, joined into
        # one transport write at its end (or before any other write).
        self._batch: list[bytes] | None = None
        self._streams: dict[MSRPURI, deque[ChunkSource]] = {}
        self._rotation: deque[MSRPURI] = deque()
        self._paused = False
        self._pumping = False
        self._open = False
        self._closed = False
        self._fastPath = fastPath
        self._initFastPath()

    # -- lifecycle ---------------------------------------------------------

    @property
    def _transport(self) -> Any:
        """
        The transport, untyped: mypy cannot check calls on zope interfaces
        without the mypy_zope plugin.
        """
        return self.transport

    @property
    def open(self) -> bool:
        """
        Whether the connection is made and not lost.
        """
        return self._open

    @property
    def sessions(self) -> dict[MSRPURI, IMSRPConnectionUser]:
        """
        The sessions bound to this connection, by local URI (a copy).
        """
        return dict(self._sessions)

    @property
    def pendingTransactions(self) -> int:
        """
        How many client transactions wait for a response.
        """
        return len(self._pending)

    def connectionMade(self) -> None:
        """
        Disable Nagle where possible, become the transport's producer and
        tell the registry.
        """
        self._open = True
        transport = self._transport
        self.peer = str(transport.getPeer())
        setNoDelay = getattr(transport, "setTcpNoDelay", None)
        if setNoDelay is not None:
            try:
                setNoDelay(True)
            except Exception as e:  # not a TCP socket after all
                self._log.debug(
                    "Cannot set TCP_NODELAY for {peer}: {error}",
                    peer=self.peer,
                    error=e,
                )
        try:
            transport.registerProducer(self, True)
        except Exception as e:
            self._log.debug(
                "Transport to {peer} refuses a producer: {error}",
                peer=self.peer,
                error=e,
            )
        self._log.info("MSRP connection with {peer} made", peer=self.peer)
        if self.registry is not None:
            self.registry.connectionOpened(self)
        self._pump()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Fail every session bound to this connection (R-145) and drop
        everything queued.

        @param reason: Why the connection was lost.
        """
        if self._closed:
            return
        self._flushBatch()
        self._open = False
        self._closed = True
        self._log.info(
            "MSRP connection with {peer} lost: {error}",
            peer=self.peer,
            error=reason.getErrorMessage(),
        )
        if self._unknownSessions > 1:
            self._log.warn(
                "MSRP peer {peer} sent {count} more requests for unknown sessions",
                peer=self.peer,
                count=self._unknownSessions - 1,
            )
        self._pending.clear()
        self._priority.clear()
        self._queuedBytes = 0
        abortCall, self._abortCall = self._abortCall, None
        if abortCall is not None and abortCall.active():
            abortCall.cancel()
        self._streams.clear()
        self._rotation.clear()
        sessions = list(self._sessions.values())
        self._sessions.clear()
        self._routes.clear()
        self._forgetRoutes()
        for session in sessions:
            try:
                session.connectionLost(self, reason)
            except Exception:
                self._log.failure(
                    "Session {msrpSessionID} failed to handle connection loss",
                    msrpSessionID=str(session.localURI),
                )
        if self.registry is not None:
            self.registry.connectionClosed(self)

    def disconnect(self) -> None:
        """
        Close the connection (the sessions learn it through
        L{IMSRPConnectionUser.connectionLost}): the responses and REPORTs
        queued are written, the connection stops being its transport's
        producer (Twisted closes no transport while one is registered and
        paused), and the transport closes once it has sent its buffer.  If
        the connection was paused (more than 64 KiB wait for a peer that
        does not read) and has a L{clock}, it is aborted if that takes more
        than L{CLOSE_GRACE} seconds.
        """
        transport = self._transport
        if transport is None or self._closed or self._aborted or self._closing:
            return
        self._closing = True
        self._flushBatch()
        stuck = self._paused
        priority = self._priority
        while priority:
            transport.write(priority.popleft())
        self._queuedBytes = 0
        self._paused = True
        try:
            transport.unregisterProducer()
        except Exception as e:
            self._log.debug(
                "Cannot unregister from {peer}: {error}", peer=self.peer, error=e
            )
        transport.loseConnection()
        if stuck and self.clock is not None and self._abortCall is None:
            if not self._closed:
                self._abortCall = self.clock.callLater(CLOSE_GRACE, self.abort)

    def attach(self, session: IMSRPConnectionUser) -> None:
        """
        Bind a session to this connection (called by the session's C{bind}).

        @param session: The session.
        @raise ValueError: If another session with the same URI is bound.
        """
        uri = session.localURI
        other = self._sessions.get(uri)
        if other is not None and other is not session:
            raise ValueError(f"another session is bound to {uri}")
        self._sessions[uri] = session
        self._routes.clear()
        self._forgetRoutes()

    def detach(self, session: IMSRPConnectionUser) -> None:
        """
        Unbind a session, drop its queued messages, and close the connection
        if it was the last one and L{closeWhenIdle} is set.

        @param session: The session.
        """
        uri = session.localURI
        if self._sessions.get(uri) is not session:
            return
        del self._sessions[uri]
        self._routes.clear()
        self._forgetRoutes()
        if uri in self._streams:
            del self._streams[uri]
            self._rotation.remove(uri)
        if not self._sessions and self.closeWhenIdle:
            self.disconnect()

    # -- incoming ----------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """
        Parse and dispatch; nothing escapes.  The responses due are written
        with one transport write at the end (or earlier, before anything
        else is written), in order.

        @param data: The bytes received.
        """
        if self._batch is not None:
            # Called again from a handler: the outer call writes the batch.
            self._dispatch(data)
            return
        batch: list[bytes] = []
        self._batch = batch
        try:
            self._dispatch(data)
        finally:
            self._batch = None
            if batch:
                self._transport.write(b"".join(batch))

    def _dispatch(self, data: bytes) -> None:
        """
        Parse and dispatch; nothing escapes.

        @param data: The bytes received.
        """
        if self._fastPath:
            self._receiveFast(data)
        else:
            self._dispatchEvents(self._parser.feed(data))

    def _dispatchEvents(self, events: list[MSRPEvent]) -> None:
        """
        Dispatch parsed messages and errors; nothing escapes.

        @param events: What the parser returned.
        """
        for event in events:
            if self._closed:
                return
            try:
                if type(event) is MSRPRequest:
                    self._requestReceived(event)
                elif isinstance(event, MSRPParseError):
                    self._parseErrorReceived(event)
                elif isinstance(event, MSRPResponse):
                    self._responseReceived(event)
                else:
                    self._requestReceived(event)
            except Exception:
                self._log.failure(
                    "Error handling MSRP from {peer}",
                    peer=self.peer,
                    transactionID=event.transactionID,
                )

    def _flushBatch(self) -> None:
        """
        Write the responses batched so far (before anything else is written,
        so that the order on the wire stays the order of the calls).
        """
        batch = self._batch
        if batch:
            data = b"".join(batch)
            batch.clear()
            self._transport.write(data)

    def _parseErrorReceived(self, error: MSRPParseError) -> None:
        """
        Answer a recoverable error, close on a fatal one.

        @param error: The error.
        """
        if error.fatal:
            self._log.warn(
                "Fatal MSRP framing error from {peer}: {error}",
                peer=self.peer,
                error=error,
            )
            self.disconnect()
            return
        self._log.warn(
            "Malformed MSRP from {peer}: {error}",
            peer=self.peer,
            error=error,
            transactionID=error.transactionID,
        )
        try:
            failureReport = error.failureReport
        except MSRPParseError:
            failureReport = None
        if failureReport is FailureReport.NO:
            return
        response = responseToError(error)
        if response is not None:
            self.sendPriority(response)

    def _responseReceived(self, response: MSRPResponse) -> None:
        """
        Give a response to its client transaction.

        @param response: The response.
        """
        pending = self._pending.pop(response.transactionID, None)
        if pending is None:
            self._log.debug(
                "MSRP response {code} from {peer} for unknown transaction"
                " {transactionID}",
                code=response.code,
                peer=self.peer,
                transactionID=response.transactionID,
            )
            return
        pending.source.listener.responseReceived(pending.request, response)

    def _requestReceived(self, request: MSRPRequest) -> None:
        """
        Find the session for a request and hand it over (R-143, R-144,
        R-148).

        @param request: The request.
        """
        session = None
        if len(request.toPath) == 1:
            uri = request.toPath[0]
            route = self._routes.get(id(uri))
            if route is not None and route[0] is uri:
                session = route[1]
            else:
                session = self._sessions.get(uri)
                if session is not None:
                    if len(self._routes) >= _CACHE_SIZE:
                        self._routes.clear()
                    self._routes[id(uri)] = (uri, session)
            if session is None and self.registry is not None:
                candidate = self.registry.sessionFor(uri)
                if candidate is not None:
                    bound = candidate.connection
                    if bound is not None and bound is not self:
                        self._log.warn(
                            "MSRP session {msrpSessionID} from {peer} is bound"
                            " to another connection",
                            msrpSessionID=str(uri),
                            peer=self.peer,
                        )
                        self.respond(request, 506)
                        return
                    try:
                        candidate.bind(self, False)
                    except ValueError as e:
                        self._log.warn(
                            "MSRP session {msrpSessionID} cannot be bound: {error}",
                            msrpSessionID=str(uri),
                            error=e,
                        )
                    else:
                        session = candidate
        if session is None:
            # One warning per connection: a peer flooding requests for no
            # session must not flood the log (the rest are counted and
            # said once when the connection ends).
            if not self._unknownSessions:
                self._log.warn(
                    "MSRP {method} from {peer} for unknown session {msrpSessionID}",
                    method=request.method,
                    peer=self.peer,
                    msrpSessionID=" ".join(str(uri) for uri in request.toPath),
                    transactionID=request.transactionID,
                )
            self._unknownSessions += 1
            self.respond(request, 481)
            return
        if request.method not in _KNOWN_METHODS:  # request.knownMethod is None
            self.respond(request, 501)
            return
        session.requestReceived(self, request)

    # -- outgoing ----------------------------------------------------------

    def respond(
        self,
        request: MSRPRequest,
        code: int,
        comment: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> bool:
        """
        Answer a request, following the report rules: never a REPORT
        (R-142), nothing for C{Failure-Report: no} (R-139), no 200 for
        C{Failure-Report: partial}.

        @param request: The request.
        @param code: The status code.
        @param comment: The comment; by default the reason phrase.
        @param headers: Further header fields.
        @return: Whether a response was queued.
        """
        if request.method == _REPORT:
            return False
        try:
            failureReport = request.effectiveFailureReport
        except MSRPParseError:
            failureReport = FailureReport.YES
        return self._respond(request, code, failureReport, comment, headers)

    def _respond(
        self,
        request: MSRPRequest,
        code: int,
        failureReport: FailureReport,
        comment: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> bool:
        """
        L{respond} to a request that is not a REPORT, whose
        C{effectiveFailureReport} the caller knows already.

        @param request: The request (not a REPORT).
        @param code: The status code.
        @param failureReport: C{request.effectiveFailureReport}.
        @param comment: The comment; by default the reason phrase.
        @param headers: Further header fields.
        @return: Whether a response was queued.
        """
        if failureReport is FailureReport.NO:
            return False
        if failureReport is FailureReport.PARTIAL and code == 200:
            return False
        data = None
        if comment is None and not headers:
            data = self._serializeResponse(request, code)
        if data is None:
            self.sendPriority(responseTo(request, code, comment, headers=headers))
        else:
            self._queueResponse(data)
        return True

    def _queueResponse(self, data: bytes) -> None:
        """
        Send a serialized response as L{sendPriority} would.

        @param data: The response.
        """
        if self._closed:
            return
        if self._pumping or self._paused or not self._open or self._priority or self._rotation:
            self._enqueuePriority(data)
        elif self._batch is not None:
            # What sendPriority and _pump would do, without the queue, and
            # written with the other responses to the same read.
            self._batch.append(data)
        else:
            self._transport.write(data)

    def _serializeResponse(self, request: MSRPRequest, code: int) -> bytes | None:
        """
        Serialize the response that C{responseTo(request, code)} would make,
        without building it, for the common case.

        @param request: The request answered (not a REPORT).
        @param code: The status code.
        @return: The exact bytes of the response, or L{None} if the generic
            builder must be used (it validates and raises).
        """
        toPath = request.toPath
        fromPath = request.fromPath
        transactionID = request.transactionID
        if not isIdent(transactionID):
            return None
        send = request.method == _SEND
        key = (id(fromPath), id(toPath), code, send)
        cached = self._responseMiddles.get(key)
        if cached is not None and cached[0] is fromPath and cached[1] is toPath:
            middle = cached[2]
        else:
            made = self._responseMiddle(toPath, fromPath, code, send)
            if made is None:
                return None
            middle = made
            if len(self._responseMiddles) >= _CACHE_SIZE:
                self._responseMiddles.clear()
            self._responseMiddles[key] = (fromPath, toPath, middle)
        tid = transactionID.encode("ascii")
        return b"MSRP " + tid + middle + tid + b"$\r\n"

    def _responseMiddle(
        self,
        toPath: tuple[MSRPURI, ...],
        fromPath: tuple[MSRPURI, ...],
        code: int,
        send: bool,
    ) -> bytes | None:
        """
        The bytes of a response between its transaction id and the end-line's
        (see L{_serializeResponse}).

        @param toPath: The To-Path of the request.
        @param fromPath: The From-Path of the request.
        @param code: The status code.
        @param send: Whether the request is a SEND.
        @return: The bytes, or L{None} if the generic builder must be used.
        """
        comment = reasonPhrase(code)
        if (
            not toPath
            or not fromPath
            or not 100 <= code <= 999
            or (comment is not None and not comment.isprintable())
        ):
            return None
        if send:
            target = self._uriAsBytes(fromPath[0])
        else:
            target = b" ".join([self._uriAsBytes(uri) for uri in fromPath])
        status = f"{code:03d}" if comment is None else f"{code:03d} {comment}"
        return b"".join(
            [
                b" ",
                status.encode("utf-8"),
                b"\r\nTo-Path: ",
                target,
                b"\r\nFrom-Path: ",
                self._uriAsBytes(toPath[-1]),
                b"\r\n",
                END_LINE_DASHES,
            ]
        )

    def _uriAsBytes(self, uri: MSRPURI) -> bytes:
        """
        The serialized form of a URI, cached by identity (URIs are
        immutable).

        @param uri: The URI.
        @return: C{uri.serialize()} as UTF-8.
        """
        cached = self._uriBytes.get(id(uri))
        if cached is not None and cached[0] is uri:
            return cached[1]
        data = uri.serialize().encode("utf-8")
        if len(self._uriBytes) >= _CACHE_SIZE:
            self._uriBytes.clear()
        self._uriBytes[id(uri)] = (uri, data)
        return data

    def abort(self) -> None:
        """
        Close the connection at once, dropping whatever waits for the peer
        (its sessions learn it through L{IMSRPConnectionUser.connectionLost}).
        """
        self._abortCall = None
        if self._closed or self._aborted:
            return
        self._aborted = True
        self._priority.clear()
        self._queuedBytes = 0
        self._streams.clear()
        self._rotation.clear()
        self._paused = True
        transport = self._transport
        if transport is None:
            return
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:  # pragma: no cover - every stream transport has it
            transport.loseConnection()
