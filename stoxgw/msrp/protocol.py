# -*- test-case-name: tests.msrp.test_protocol,tests.msrp.test_connectionlimits -*-
"""
MSRP connections on Twisted: bytes <-> wire objects, dispatch, and the
per-connection send scheduler (RFC 4975 sections 5.4, 7, 10).

An L{MSRPConnection} parses the byte stream with L{MSRPParser} and:

  - answers recoverable parse errors with their status (unless the request
    said C{Failure-Report: no} or is a REPORT, R-139, R-142) and closes the
    connection on fatal framing errors;
  - hands requests to the session bound to this connection whose local URI
    is the request's single To-Path URI; an unbound session found through the
    L{IMSRPSessionRegistry} is bound now (R-144); an unknown URI gets 481
    (R-143), a session bound to another connection 506 (R-144), an unknown
    method 501 (R-148);
  - hands responses to the pending client transaction with their transaction
    id.

Outgoing traffic goes through a scheduler: responses and REPORTs (the
I{priority} queue) always go before the next chunk of any SEND (R-135); the
messages of each session wait in a queue of their own (so one session's
messages keep their order) and the sessions take turns, one chunk each.
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

import re
from collections import deque
from dataclasses import dataclass
from typing import Protocol as TypingProtocol
from typing import Any, Callable, Sequence

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from stoxgw.msrp.message import (
    END_LINE_DASHES,
    ByteRange,
    Continuation,
    FailureReport,
    MSRPHeader,
    MSRPMethod,
    MSRPParseError,
    MSRPRequest,
    MSRPResponse,
    SuccessReport,
    _LazyHeaders,
    buildRequest,
    isIdent,
)
from stoxgw.msrp.parser import (
    _REQUEST_LINE_RE,
    _START_RE,
    DEFAULT_MAX_CHUNK_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    MSRPEvent,
    MSRPParser,
)
from stoxgw.msrp.reports import reasonPhrase, responseTo, responseToError
from stoxgw.msrp.uri import MSRPURI

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "IMSRPConnectionUser",
    "IMSRPSessionRegistry",
    "ConnectionUser",
    "SessionRegistry",
    "ChunkListener",
    "ChunkSource",
    "ChunkedSend",
    "SingleRequest",
    "MSRPConnection",
]

DEFAULT_CHUNK_SIZE = 2048
"""
The largest body of an outgoing chunk by default (RFC 4975 section 7.1.1,
R-135).
"""

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

# The receive fast path (MSRPConnection._receive).  A complete SEND chunk in
# the usual layout: the start line, To-Path, From-Path and Message-ID, in
# that order and with one SP after each colon; the other header fields
# ("the rest") follow.
_IDENT_RE = rb"[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}"
_SIMPLE_SEND_RE = re.compile(
    rb"MSRP (" + _IDENT_RE + rb") SEND\r\n"
    rb"(To-Path: [^\r\n]*\r\nFrom-Path: [^\r\n]*\r\n)"
    rb"Message-ID: (" + _IDENT_RE + rb")\r\n"
)
# The same with any bytes of a given length in place of the To-Path and
# From-Path lines, by that length (groups: transaction id, Message-ID): with
# a check that those bytes are the lines of the route tried (see
# _FastRoute), it is quicker than _SIMPLE_SEND_RE.
_SKIP_MATCHES: dict[int, Callable[[bytes, int, int], re.Match[bytes] | None]] = {}
_END_FLAGS = frozenset(b"$+#")
_PREFIX = b"MSRP "
# The most the fast path holds of an incomplete message between reads
# (beyond it, the parser takes the message and holds it instead).
_HOLD_LIMIT = 1 << 16
_REST_NAMES = frozenset(
    {"byte-range", "success-report", "failure-report", "content-type"}
)
_OTHER_PATH_NAMES = frozenset({"to-path", "from-path", "message-id"})
_FAILURE_REPORTS = {report.value: report for report in FailureReport}
_SimpleRest = tuple[tuple[MSRPHeader, ...], int | None, str, FailureReport]
_SimpleEntry = tuple[
    tuple[MSRPURI, ...],
    tuple[MSRPURI, ...],
    _LazyHeaders,
    int | None,
    str,
    FailureReport,
]
"""
What the session's C{_receiveSimpleSend} is given of a chunk's header
section: the To-Path, the From-Path, the header fields (made if read), the
Byte-Range total, the Content-Type and the Failure-Report.
"""
# The most rests (see _RESTS) a route keeps an entry for.
_ENTRIES_SIZE = 256
# The rest of the header section (raw bytes, Message-ID excluded) to what the
# fast path needs of it, or None if such a message is not for the fast path.
_RESTS: dict[bytes, _SimpleRest | None] = {}
_RESTS_SIZE = 4096
_NOT_SIMPLE = 0
"""
What C{_receiveSimpleSend} returns when it did not take the chunk (the
connection then parses and dispatches it the usual way).
"""
_ANSWER_200 = 1
"""
What C{_receiveSimpleSend} returns when the connection must answer 200.
"""
_HANDLED = 2
"""
What C{_receiveSimpleSend} returns when nothing more is to be done.
"""


class IMSRPConnectionUser(Interface):
    """
    What an L{MSRPConnection} calls on a session bound to it.
    """

    localURI = Attribute("The session's own MSRP URI (an L{MSRPURI}).")
    connection = Attribute("The L{MSRPConnection} the session is bound to, or L{None}.")

    def bind(connection: MSRPConnection, active: bool) -> None:
        """
        Bind the session to C{connection}; the session must call
        L{MSRPConnection.attach}.

        @param connection: The connection.
        @param active: Whether this side opened the connection (then it sends
            a bodiless SEND at once, R-157).
        """

    def requestReceived(connection: MSRPConnection, request: MSRPRequest) -> None:
        """
        A request for this session arrived (its method is known).

        @param connection: The connection it arrived on.
        @param request: The request.
        """

    def connectionLost(connection: MSRPConnection, reason: Failure) -> None:
        """
        The connection the session is bound to was lost (R-145).

        @param connection: The connection.
        @param reason: Why.
        """


class IMSRPSessionRegistry(Interface):
    """
    What an L{MSRPConnection} asks about sessions it has not seen yet (the
    L{stoxgw.msrp.endpoint.MSRPEndpoint}).
    """

    def sessionFor(uri: MSRPURI) -> IMSRPConnectionUser | None:
        """
        Look up a session by its local URI (RFC 4975 section 6.1 comparison).

        @param uri: The To-Path URI of a received request.
        @return: The session, or L{None}.
        """

    def connectionOpened(connection: MSRPConnection) -> None:
        """
        A connection was made (accepted or opened).

        @param connection: The connection.
        """

    def connectionClosed(connection: MSRPConnection) -> None:
        """
        A connection was lost; its sessions have been told.

        @param connection: The connection.
        """


class ConnectionUser(TypingProtocol):
    """
    The static type of an L{IMSRPConnectionUser} provider (mypy does not
    read zope interfaces without its plugin).
    """

    localURI: MSRPURI
    connection: MSRPConnection | None

    def bind(self, connection: MSRPConnection, active: bool) -> None:
        """
        See L{IMSRPConnectionUser.bind}.
        """

    def requestReceived(self, connection: MSRPConnection, request: MSRPRequest) -> None:
        """
        See L{IMSRPConnectionUser.requestReceived}.
        """

    def connectionLost(self, connection: MSRPConnection, reason: Failure) -> None:
        """
        See L{IMSRPConnectionUser.connectionLost}.
        """


class SessionRegistry(TypingProtocol):
    """
    The static type of an L{IMSRPSessionRegistry} provider.
    """

    def sessionFor(self, uri: MSRPURI) -> ConnectionUser | None:
        """
        See L{IMSRPSessionRegistry.sessionFor}.
        """

    def connectionOpened(self, connection: MSRPConnection) -> None:
        """
        See L{IMSRPSessionRegistry.connectionOpened}.
        """

    def connectionClosed(self, connection: MSRPConnection) -> None:
        """
        See L{IMSRPSessionRegistry.connectionClosed}.
        """


class ChunkListener(TypingProtocol):
    """
    Told what happens to the requests of a L{ChunkSource}.
    """

    def chunkWritten(self, request: MSRPRequest, last: bool) -> None:
        """
        A request was handed to the transport.

        @param request: The request.
        @param last: Whether it is the last request of the source.
        """

    def responseReceived(self, request: MSRPRequest, response: MSRPResponse) -> None:
        """
        The response to one of the source's requests arrived.

        @param request: The request answered.
        @param response: The response.
        """


class ChunkSource(TypingProtocol):
    """
    One outgoing message in a session's queue: it gives the scheduler its
    requests one at a time.
    """

    listener: ChunkListener

    @property
    def done(self) -> bool:
        """
        Whether there is nothing more to send.
        """

    def nextChunk(self, maxSize: int) -> MSRPRequest | None:
        """
        Make the next request.

        @param maxSize: The largest body the connection allows.
        @return: The request, or L{None} if there is nothing more.
        """

    def expectsResponse(self, request: MSRPRequest) -> bool:
        """
        Whether the connection should keep C{request}'s transaction pending.

        @param request: A request this source made.
        """


def _simpleRest(parser: MSRPParser, rest: bytes) -> _SimpleRest | None:
    """
    Read the header fields after Message-ID of a SEND chunk for the receive
    fast path.

    @param parser: Parses the header lines (as it would).
    @param rest: The lines, each with its CRLF.
    @return: The fields, the Byte-Range total (L{None} when absent or
        C{*}), the Content-Type (C{""} when absent) and the Failure-Report (default applied), or L{None} if the
        chunk must take the usual path: a line the parser refuses, a repeated
        or unusual field, a malformed value, a Byte-Range that does not start
        at 1, or C{Success-Report: yes} (a REPORT follows).
    """
    fields: list[MSRPHeader] = []
    values: dict[str, str] = {}
    if rest:
        lineCache = parser._lineCache
        for raw in rest[:-2].split(b"\r\n"):
            field = lineCache.get(raw) or parser._headerLine(raw)
            if field is None:
                return None
            name = field.name.lower()
            if name in _OTHER_PATH_NAMES:
                return None
            if name in _REST_NAMES:
                if name in values:
                    return None
                values[name] = field.value
            fields.append(field)
    byteRange = None
    text = values.get("byte-range")
    if text is not None:
        try:
            byteRange = ByteRange.fromString(text)
        except ValueError:
            return None
        if byteRange.start != 1:
            return None
    if values.get("success-report", SuccessReport.NO.value) != SuccessReport.NO.value:
        return None
    failureReport = _FAILURE_REPORTS.get(values.get("failure-report", "yes"))
    if failureReport is None:
        return None
    return (
        tuple(fields),
        None if byteRange is None else byteRange.total,
        values.get("content-type") or "",
        failureReport,
    )


class _FastRoute:
    """
    Where the receive fast path delivers the SENDs with given To-Path and
    From-Path lines (see L{MSRPConnection._fastRoute}).

    @ivar receive: The session's C{_receiveSimpleSend}.
    @ivar toPath: The To-Path.
    @ivar fromPath: The From-Path.
    @ivar fields: The To-Path and From-Path header fields.
    @ivar middle: The bytes of a C{200} between the transaction ids.
    @ivar paths: The two lines, each with its CRLF.
    @ivar match: Matches what L{_SIMPLE_SEND_RE} matches with lines as long
        as these (groups: transaction id, Message-ID); those of a match
        start 12 octets after the transaction id.
    @ivar entries: The rest of a header section (see L{_RESTS}) to the
        entry given to C{receive}, or L{None} if such a chunk takes the
        usual path.
    """

    __slots__ = (
        "receive",
        "toPath",
        "fromPath",
        "fields",
        "middle",
        "paths",
        "match",
        "entries",
    )

    def __init__(
        self,
        receive: Callable[[bytes, str, bytes, _SimpleEntry], int],
        toPath: tuple[MSRPURI, ...],
        fromPath: tuple[MSRPURI, ...],
        fields: tuple[MSRPHeader, MSRPHeader],
        middle: bytes,
        paths: bytes,
    ) -> None:
        self.receive = receive
        self.toPath = toPath
        self.fromPath = fromPath
        self.fields = fields
        self.middle = middle
        self.paths = paths
        size = len(paths)
        match = _SKIP_MATCHES.get(size)
        if match is None:
            match = re.compile(
                rb"MSRP (" + _IDENT_RE + rb") SEND\r\n"
                + b"(?s:.{%d})" % size
                + rb"Message-ID: (" + _IDENT_RE + rb")\r\n"
            ).match
            if len(_SKIP_MATCHES) >= _CACHE_SIZE:
                _SKIP_MATCHES.clear()
            _SKIP_MATCHES[size] = match
        self.match = match
        self.entries: dict[bytes, _SimpleEntry | None] = {}

    def entry(self, parser: MSRPParser, rest: bytes) -> _SimpleEntry | None:
        """
        Make (and keep) the entry for a rest of a header section.

        @param parser: Parses the header lines (as it would).
        @param rest: The lines after the Message-ID, each with its CRLF.
        """
        info = _RESTS.get(rest)
        if info is None and rest not in _RESTS:
            info = _simpleRest(parser, rest)
            if len(_RESTS) >= _RESTS_SIZE:
                _RESTS.clear()
            _RESTS[rest] = info
        entry: _SimpleEntry | None = None
        if info is not None:
            fields, declared, contentType, failureReport = info
            entry = (
                self.toPath,
                self.fromPath,
                _LazyHeaders(self.fields, fields),
                declared,
                contentType,
                failureReport,
            )
        entries = self.entries
        if len(entries) >= _ENTRIES_SIZE:
            entries.clear()
        entries[rest] = entry
        return entry


def _messageEnd(buffer: bytes, start: int, limit: int) -> int:
    """
    Find where the message at C{start} ends as the parser frames it: at the
    first end-line of its transaction after the start line, whatever comes
    between (a bodiless message ends at an end-line among its header lines;
    a message the parser rejects is skipped up to that end-line too).

    @param buffer: The bytes.
    @param start: The start of the message.
    @param limit: The parser's C{maxHeaderBytes}.
    @return: The position after the end-line; -1 if it is not (completely)
        there yet; -2 if the start line is not one the parser can frame on
        (the parser then fails).
    """
    lineEnd = buffer.find(b"\r\n", start)
    if lineEnd < 0:
        return -1
    if lineEnd + 2 - start > limit:
        return -2
    startLine = _START_RE.match(buffer, start, lineEnd)
    if startLine is None:
        return -2
    pattern = b"\r\n-------" + startLine.group(1)
    size = len(buffer)
    found = buffer.find(pattern, lineEnd)
    while found >= 0:
        after = found + len(pattern)
        if after + 3 > size:
            return -1
        if buffer[after] in _END_FLAGS and buffer[after + 1 : after + 3] == b"\r\n":
            return after + 3
        found = buffer.find(pattern, found + 1)
    return -1


def _mayHold(buffer: bytes, start: int, limit: int) -> bool:
    """
    Whether the parser, fed the incomplete message at C{start}, would do
    nothing yet (no event, no error): then the fast path may keep the bytes
    until more arrive.

    It holds: the start of a start line; or a request line and header lines
    without an empty line or anything that could be an end-line, within
    the header limit.

    @param buffer: The bytes.
    @param start: The start of the message.
    @param limit: The parser's C{maxHeaderBytes}.
    """
    size = len(buffer) - start
    if size + 2 > limit or size > _HOLD_LIMIT:
        return False
    lineEnd = buffer.find(b"\r\n", start)
    if lineEnd < 0:
        return buffer[start : start + 5] == _PREFIX[:size]
    if _REQUEST_LINE_RE.match(buffer, start) is None:
        return False
    return buffer.find(b"\r\n\r\n", lineEnd) < 0 and buffer.find(b"\r\n-", lineEnd) < 0


class SingleRequest:
    """
    A L{ChunkSource} that sends one request that is never cut (NICKNAME, the
    bodiless SEND of R-157).

    @ivar request: The request.
    @ivar listener: Told when it is written and answered.
    """

    def __init__(self, request: MSRPRequest, listener: ChunkListener) -> None:
        self.request = request
        self.listener = listener
        self._sent = False
        self._aborted = False

    @property
    def done(self) -> bool:
        """
        Whether the request was taken or the source aborted.
        """
        return self._sent or self._aborted

    def nextChunk(self, maxSize: int) -> MSRPRequest | None:
        """
        @param maxSize: Ignored (non-SEND requests are not interruptible,
            R-131).
        @return: The request, once.
        """
        if self.done:
            return None
        self._sent = True
        return self.request

    def expectsResponse(self, request: MSRPRequest) -> bool:
        """
        @return: C{True} unless the request says C{Failure-Report: no}.
        """
        return _expectsResponse(request)

    def abort(self) -> None:
        """
        Do not send the request if it has not been sent yet.
        """
        self._aborted = True


def _expectsResponse(request: MSRPRequest) -> bool:
    """
    Whether a transaction response may come for a request we send.

    @param request: The request.
    @return: C{False} for REPORTs and C{Failure-Report: no} (R-139, R-142).
    """
    if request.method == MSRPMethod.REPORT.value:
        return False
    return request.effectiveFailureReport is not FailureReport.NO


class ChunkedSend:
    """
    A L{ChunkSource} that cuts one message into SEND chunks (RFC 4975 section
    7.1.1): every chunk carries the Message-ID, the report headers and a
    Byte-Range with the real positions and the total (R-132-R-134); the last
    one ends with C{$}, the others with C{+}.  An empty body is one chunk with
    C{Byte-Range: 1-0/0}.

    @ivar messageID: The Message-ID.
    @ivar size: The body length.
    @ivar chunkSize: The largest body of a chunk this message wants (the
        connection may impose a smaller one).
    @ivar listener: Told when chunks are written and answered.
    """

    def __init__(
        self,
        toPath: Sequence[MSRPURI],
        fromPath: Sequence[MSRPURI],
        messageID: str,
        contentType: str,
        body: bytes,
        listener: ChunkListener,
        headers: Sequence[tuple[str, str]] = (),
        chunkSize: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        """
        @param toPath: The peer's path.
        @param fromPath: Own path.
        @param messageID: The Message-ID.
        @param contentType: The Content-Type of every chunk.
        @param body: The whole body (kept, not copied).
        @param listener: See L{listener}.
        @param headers: Report and extension headers for every chunk, placed
            after Message-ID and before Byte-Range.
        @param chunkSize: See L{chunkSize}.
        """
        if chunkSize < 1:
            raise ValueError("chunkSize must be positive")
        self.toPath = tuple(toPath)
        self.fromPath = tuple(fromPath)
        self.messageID = messageID
        self.contentType = contentType
        self.headers = tuple(headers)
        self.listener = listener
        self.chunkSize = chunkSize
        self.size = len(body)
        self._body = memoryview(body)
        self._offset = 0
        self._started = False
        self._aborted = False

    @property
    def done(self) -> bool:
        """
        Whether all chunks were made or the message was aborted.
        """
        return self._aborted or (self._started and self._offset >= self.size)

    @property
    def sentBytes(self) -> int:
        """
        How many body octets were put into chunks so far.
        """
        return self._offset

    def abort(self) -> None:
        """
        Make no further chunks (RFC 4975 section 10.5, R-148: stop sending a
        message after a 413 or another failure).
        """
        self._aborted = True

    def nextChunk(self, maxSize: int) -> MSRPRequest | None:
        """
        Make the next chunk.

        @param maxSize: The largest body the connection allows.
        @return: The chunk, or L{None} when done.
        """
        if self.done:
            return None
        size = max(1, min(self.chunkSize, maxSize))
        start = self._offset
        piece = bytes(self._body[start : start + size])
        end = start + len(piece)
        last = end >= self.size
        fields = [("Message-ID", self.messageID), *self.headers]
        fields.append(("Byte-Range", ByteRange(start + 1, end, self.size).serialize()))
        request = buildRequest(
            MSRPMethod.SEND,
            self.toPath,
            self.fromPath,
            fields,
            body=piece,
            contentType=self.contentType,
            continuation=Continuation.END if last else Continuation.MORE,
        )
        self._offset = end
        self._started = True
        return request

    def expectsResponse(self, request: MSRPRequest) -> bool:
        """
        @return: C{False} for C{Failure-Report: no} (R-139).
        """
        return _expectsResponse(request)


@dataclass(slots=True)
class _Pending:
    """
    A client transaction waiting for its response.
    """

    source: ChunkSource
    request: MSRPRequest


@implementer(IPushProducer)
class MSRPConnection(Protocol):
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

    def __init__(
        self,
        registry: SessionRegistry | None = None,
        chunkSize: int = DEFAULT_CHUNK_SIZE,
        maxChunkBytes: int = DEFAULT_MAX_CHUNK_BYTES,
        maxHeaderBytes: int = DEFAULT_MAX_HEADER_BYTES,
        closeWhenIdle: bool = True,
        maxQueuedBytes: int = DEFAULT_MAX_QUEUED_BYTES,
    ) -> None:
        """
        @param registry: See L{registry}.
        @param chunkSize: See L{chunkSize}.
        @param maxChunkBytes: The largest incoming chunk body (413 beyond).
        @param maxHeaderBytes: The largest incoming header block (400 beyond).
        @param closeWhenIdle: See L{closeWhenIdle}.
        @param maxQueuedBytes: See L{maxQueuedBytes}.
        """
        self.registry = registry
        self.chunkSize = chunkSize
        self.closeWhenIdle = closeWhenIdle
        self.maxQueuedBytes = maxQueuedBytes
        self.peer = "?"
        self._parser = MSRPParser(maxHeaderBytes, maxChunkBytes)
        self._sessions: dict[MSRPURI, ConnectionUser] = {}
        self._pending: dict[str, _Pending] = {}
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
        self._routes: dict[int, tuple[MSRPURI, ConnectionUser]] = {}
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
        # The receive fast path (see _receive); off, every byte goes through
        # the parser (the tests compare both).
        self._fastPath = True
        # The start of a message held until the next read.
        self._fastTail = b""
        # While _receive runs: the data of nested dataReceived calls.
        self._fastQueue: list[bytes] | None = None
        # The To-Path and From-Path lines of a fast-path SEND to the session,
        # its receiving method, the paths, their fields and the middle of the
        # 200; None if such requests take the usual path.  Cleared whenever
        # the sessions change.
        self._fastRoutes: dict[bytes, _FastRoute | None] = {}
        # The route of the last fast-path SEND, tried first.  None whenever
        # the sessions change.
        self._fastLast: _FastRoute | None = None

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
    def sessions(self) -> dict[MSRPURI, ConnectionUser]:
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
        self._fastRoutes.clear()
        self._fastLast = None
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

    def attach(self, session: ConnectionUser) -> None:
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
        self._fastRoutes.clear()
        self._fastLast = None

    def detach(self, session: ConnectionUser) -> None:
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
        self._fastRoutes.clear()
        self._fastLast = None
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
        if not self._fastPath:
            tail = self._fastTail
            if tail:
                data = tail + data
                self._fastTail = b""
            self._dispatchEvents(self._parser.feed(data))
            return
        queue = self._fastQueue
        if queue is not None:
            # Called again from a handler while earlier bytes are being
            # handled: these bytes come after them in the stream.
            queue.append(data)
            return
        queue = self._fastQueue = [data]
        try:
            while queue:
                self._receiveChunk(queue.pop(0))
        finally:
            self._fastQueue = None

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

    def _receiveChunk(self, data: bytes) -> None:
        """
        Handle received bytes: between messages L{_receive} takes them,
        within a message the parser does.

        @param data: The bytes.
        """
        parser = self._parser
        tail = self._fastTail
        if tail:
            data = tail + data
            self._fastTail = b""
        while data:
            if self._closed or parser.failed:
                return
            if parser.idle:
                data = self._receive(data)
                if not data:
                    return
            events, data = parser.feedUntilIdle(data)
            self._dispatchEvents(events)

    def _receive(self, buffer: bytes) -> bytes:
        """
        Handle the messages at the front of C{buffer}, which starts at a
        message boundary while the parser holds nothing.

        The usual SEND chunk (complete, single-chunk, in the usual header
        layout, to a session bound to this connection; see L{_simpleRest}
        and L{_fastRoute}) goes to the session's C{_receiveSimpleSend}
        without an L{MSRPRequest} being made (nor its header fields, see
        L{_LazyHeaders}), and its C{200} is made from cached bytes.  The
        route of the previous such chunk is tried first (its lines compared
        as bytes), then L{_SIMPLE_SEND_RE} and the routes by lines.  Any other complete message is framed (on its
        end-line) and parsed and dispatched alone, as L{_dispatchEvents}
        would.  An incomplete message is kept for the next read while the
        parser would do nothing with its bytes yet; otherwise it is left to
        the parser.  So what is answered and dispatched, and when, is what
        the parser alone gives.

        @param buffer: The bytes.
        @return: The bytes the parser must take (from a message boundary),
            or C{b""}.
        """
        parser = self._parser
        limit = parser.maxHeaderBytes
        maxChunk = parser.maxChunkBytes
        routes = self._fastRoutes
        match = _SIMPLE_SEND_RE.match
        find = buffer.find
        startswith = buffer.startswith
        size = len(buffer)
        pos = 0
        while pos < size:
            if self._closed:
                return b""
            # The route of the last SEND is tried first (read each time: a
            # handler may change the sessions).
            route = self._fastLast
            simple = None
            if route is not None:
                simple = route.match(buffer, pos, pos + limit)
                if simple is not None:
                    tid, mid = simple.groups()
                    if not startswith(route.paths, pos + 12 + len(tid)):
                        simple = None
            if simple is None:
                simple = match(buffer, pos, pos + limit)
                if simple is not None:
                    tid, paths, mid = simple.groups()
                    route = routes.get(paths)
                    if route is None and paths not in routes:
                        route = self._fastRoute(paths)
                    if route is not None:
                        self._fastLast = route
            if simple is not None and route is not None:
                headEnd = simple.end()
                blank = find(b"\r\n\r\n", headEnd - 2, pos + limit + 2)
                if blank >= 0:
                    rest = buffer[headEnd : blank + 2]
                    entries = route.entries
                    entry = entries.get(rest)
                    if entry is None and rest not in entries:
                        entry = route.entry(parser, rest)
                    if entry is not None:
                        bodyStart = blank + 4
                        found = find(b"\r\n-------" + tid, blank + 2)
                        after = found + 9 + len(tid)
                        if (
                            found >= bodyStart
                            and startswith(b"$\r\n", after)
                            and found - bodyStart <= maxChunk
                        ):
                            messageID = mid.decode("ascii")
                            try:
                                outcome = route.receive(
                                    tid, messageID, buffer[bodyStart:found], entry
                                )
                            except Exception:
                                self._log.failure(
                                    "Error handling MSRP from {peer}",
                                    peer=self.peer,
                                    transactionID=tid.decode("ascii"),
                                )
                                outcome = _HANDLED
                            if outcome == _ANSWER_200:
                                if not self._closed:
                                    batch = self._batch
                                    if batch is None or (
                                        self._pumping
                                        or self._paused
                                        or not self._open
                                        or self._priority
                                        or self._rotation
                                    ):
                                        self._queueResponse(
                                            b"MSRP " + tid + route.middle + tid + b"$\r\n"
                                        )
                                    else:
                                        # Joined by dataReceived.
                                        batch += (b"MSRP ", tid, route.middle, tid, b"$\r\n")
                                pos = after + 3
                                continue
                            if outcome == _HANDLED:
                                pos = after + 3
                                continue
                        elif (
                            (found < 0 or after + 3 > size)
                            and size - bodyStart <= maxChunk
                            and size - pos <= _HOLD_LIMIT
                        ):
                            # Incomplete: the parser would only wait too.
                            self._fastTail = buffer[pos:] if pos else buffer
                            return b""
            end = _messageEnd(buffer, pos, limit)
            if end > 0:
                self._dispatchEvents(parser.feed(buffer[pos:end]))
                pos = end
                if not parser.idle:
                    return buffer[pos:]
                continue
            if end == -1 and _mayHold(buffer, pos, limit):
                self._fastTail = buffer[pos:] if pos else buffer
                return b""
            return buffer[pos:] if pos else buffer
        return b""

    def _fastRoute(self, paths: bytes) -> _FastRoute | None:
        """
        Find where the fast path delivers a SEND with these To-Path and
        From-Path lines (as L{_requestReceived} would route it), and cache
        it until the sessions change.

        @param paths: The two lines, each with its CRLF.
        @return: The route; or L{None} if such requests take the usual
            path: a line the parser refuses, more than one To-Path URI, no
            session bound to this connection for it (it may need binding),
            a session without C{_receiveSimpleSend}.
        """
        parser = self._parser
        split = paths.find(b"\r\n")
        toLine = paths[:split]
        fromLine = paths[split + 2 : -2]
        pathLines = parser._pathLineCache
        toEntry = pathLines.get(toLine) or parser._pathLine(toLine)
        fromEntry = pathLines.get(fromLine) or parser._pathLine(fromLine)
        route = None
        if (
            toEntry is not None
            and fromEntry is not None
            and toEntry[0] == "to-path"
            and fromEntry[0] == "from-path"
            and len(toEntry[2]) == 1
        ):
            toPath = toEntry[2]
            fromPath = fromEntry[2]
            session = self._sessions.get(toPath[0])
            receive = getattr(session, "_receiveSimpleSend", None)
            middle = self._responseMiddle(toPath, fromPath, 200, True)
            if session is not None and receive is not None and middle is not None:
                route = _FastRoute(
                    receive, toPath, fromPath, (toEntry[1], fromEntry[1]), middle, paths
                )
        if len(self._fastRoutes) >= _CACHE_SIZE:
            self._fastRoutes.clear()
        self._fastRoutes[paths] = route
        return route

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
            self._log.warn(
                "MSRP {method} from {peer} for unknown session {msrpSessionID}",
                method=request.method,
                peer=self.peer,
                msrpSessionID=" ".join(str(uri) for uri in request.toPath),
                transactionID=request.transactionID,
            )
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
            self._priority.append(data)
            self._queuedBytes += len(data)
            if self._queuedBytes > self.maxQueuedBytes:
                self._overflow()
                return
            self._pump()
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

    def sendPriority(self, message: MSRPRequest | MSRPResponse) -> None:
        """
        Queue a response or a REPORT before any further SEND chunk (R-135).

        @param message: The message.
        """
        if self._closed:
            return
        data = message.serialize()
        self._priority.append(data)
        self._queuedBytes += len(data)
        if self._queuedBytes > self.maxQueuedBytes:
            self._overflow()
            return
        self._pump()

    def _overflow(self) -> None:
        """
        More than L{maxQueuedBytes} of responses and REPORTs wait for a
        peer that does not read: abort the connection (dropping what is
        buffered; the sessions fail, R-145).
        """
        if self._aborted:
            return
        self._log.warn(
            "MSRP peer {peer} does not read: more than {limit} octets of"
            " responses wait for it, connection closed",
            peer=self.peer,
            limit=self.maxQueuedBytes,
        )
        self.abort()

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

    def sendStream(self, session: ConnectionUser, source: ChunkSource) -> None:
        """
        Queue an outgoing message of a session; the sessions' queues take
        turns, one chunk each.

        @param session: The session (it must be attached).
        @param source: The message.
        """
        if self._closed:
            return
        uri = session.localURI
        queue = self._streams.get(uri)
        if queue is None:
            queue = self._streams[uri] = deque()
            self._rotation.append(uri)
        queue.append(source)
        self._pump()

    def forgetTransaction(self, transactionID: str) -> None:
        """
        Stop waiting for a response (the sender gave up, e.g. timed out).

        @param transactionID: The transaction id.
        """
        self._pending.pop(transactionID, None)

    def _nextStreamChunk(self) -> tuple[ChunkSource, MSRPRequest, bool] | None:
        """
        Take the next chunk, round robin over the sessions.

        @return: The source, the chunk and whether it is the source's last,
            or L{None} if nothing is queued.
        """
        while self._rotation:
            uri = self._rotation.popleft()
            queue = self._streams[uri]
            chunk = None
            source = None
            while queue and chunk is None:
                source = queue[0]
                chunk = source.nextChunk(self.chunkSize)
                if chunk is None or source.done:
                    queue.popleft()
            if queue:
                self._rotation.append(uri)
            else:
                del self._streams[uri]
            if chunk is not None and source is not None:
                return source, chunk, source.done
        return None

    def _pump(self) -> None:
        """
        Write queued messages until the queues are empty or the transport
        asks to pause.
        """
        self._flushBatch()
        if self._pumping or not self._open or self._closed:
            return
        self._pumping = True
        transport = self._transport
        try:
            while not self._paused and not self._closed:
                if self._priority:
                    data = self._priority.popleft()
                    self._queuedBytes -= len(data)
                    transport.write(data)
                    continue
                taken = self._nextStreamChunk()
                if taken is None:
                    break
                source, request, last = taken
                if source.expectsResponse(request):
                    self._pending[request.transactionID] = _Pending(source, request)
                transport.write(request.serialize())
                source.listener.chunkWritten(request, last)
        finally:
            self._pumping = False

    # -- IPushProducer -----------------------------------------------------

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full: write nothing more for now.
        """
        self._paused = True

    def resumeProducing(self) -> None:
        """
        The transport drained: go on writing.
        """
        self._paused = False
        self._pump()

    def stopProducing(self) -> None:
        """
        The transport is going away: write nothing more.
        """
        self._paused = True
