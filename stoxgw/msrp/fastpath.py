# -*- test-case-name: tests.msrp.test_fastpath -*-
"""
The receive fast path of an MSRP connection: everything that makes the
usual SEND cheap, in this one module.

The usual SEND chunk is complete in one read, whole (one chunk, C{$}), in
the usual header layout (start line, To-Path, From-Path, Message-ID, with
one SP after each colon, then Byte-Range, Content-Type and the like), and
for a session bound to the connection.  For such a chunk no
L{MSRPRequest} is made: the session's L{WholeSendReceiving.wholeSendReceived}
is given the transaction id, the Message-ID, the body and what the
connection knows of the header section from earlier chunks (a
L{WholeSend}), and the C{200} is made from cached bytes.  Anything else
is framed here and parsed by the connection's L{MSRPParser}, alone, so
what is answered and dispatched, and when, is what the parser alone gives
(C{tests/msrp/test_fastpath.py} compares both, byte for byte).

The connection's entry point is L{FastReceiving._receiveFast}, which
L{stoxgw.msrp.protocol.MSRPConnection} (a L{FastReceiving}) calls with
every read; it calls L{FastReceiving._forgetRoutes} whenever its sessions
change.  The parser is used through its public methods only
(L{MSRPParser.headerField}, L{MSRPParser.pathField},
L{MSRPParser.messageEnd}, L{MSRPParser.wouldWait}).  Every cache here
belongs to one connection (the routes, and per route the header sections
seen) and is bounded: what a peer sends fills only the caches of its own
connection, and they go with it.

The session's side is L{WholeSendReceiving.wholeSendReceived}
(L{stoxgw.msrp.session.MSRPSession} is a L{WholeSendReceiving}): the
session's checks, then the L{IncomingMessage} for the handler, made
without the dataclass constructor and with its header fields made only if
read (L{LazyHeaders}).  This module installs the descriptor that makes them
on first read on the C{headers} slot of L{IncomingMessage}; nothing else
stores a L{LazyHeaders} there.
"""

from __future__ import annotations

import re
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from twisted.logger import Logger
from twisted.python.failure import Failure

from stoxgw.msrp.incoming import IncomingMessage, Receiving
from stoxgw.msrp.message import (
    ByteRange,
    Continuation,
    FailureReport,
    MSRPHeader,
    MSRPMethod,
    MSRPRequest,
    SuccessReport,
)
from stoxgw.msrp.parser import MSRPEvent, MSRPParser
from stoxgw.msrp.uri import MSRPURI

if TYPE_CHECKING:  # pragma: no cover
    from stoxgw.msrp.interfaces import IMSRPConnectionUser

_new = object.__new__

__all__ = [
    "NOT_TAKEN",
    "ANSWER_200",
    "HANDLED",
    "WholeSend",
    "LazyHeaders",
    "FastReceiving",
    "WholeSendReceiving",
]

NOT_TAKEN = 0
"""
What L{WholeSendReceiving.wholeSendReceived} returns when it did not take
the chunk (the connection then parses and dispatches it the usual way).
"""

ANSWER_200 = 1
"""
What L{WholeSendReceiving.wholeSendReceived} returns when the connection
must answer 200.
"""

HANDLED = 2
"""
What L{WholeSendReceiving.wholeSendReceived} returns when nothing more is
to be done.
"""

# A complete SEND chunk in the usual layout: the start line, To-Path,
# From-Path and Message-ID, in that order and with one SP after each colon;
# the other header fields ("the rest") follow.
_IDENT_RE = rb"[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}"
_SIMPLE_SEND_RE = re.compile(
    rb"MSRP (" + _IDENT_RE + rb") SEND\r\n"
    rb"(To-Path: [^\r\n]*\r\nFrom-Path: [^\r\n]*\r\n)"
    rb"Message-ID: (" + _IDENT_RE + rb")\r\n"
)
# The most the fast path holds of an incomplete message between reads
# (beyond it, the parser takes the message and holds it instead).
_HOLD_LIMIT = 1 << 16
# Bounds of the per-connection caches: at most 64 routes, each with at
# most 256 header sections of at most 512 octets (longer ones are read
# each time), so a connection caches at most about 8 MiB whatever its
# peer sends.
_ROUTES_SIZE = 64
_ENTRIES_SIZE = 256
_ENTRY_KEY_LIMIT = 512
_REST_NAMES = frozenset({"byte-range", "success-report", "failure-report", "content-type"})
_OTHER_PATH_NAMES = frozenset({"to-path", "from-path", "message-id"})
_FAILURE_REPORTS = {report.value: report for report in FailureReport}
_SEND = MSRPMethod.SEND.value

_Rest = tuple[tuple[MSRPHeader, ...], int | None, str, FailureReport]
"""
What the fast path needs of the header fields after the Message-ID (see
L{_readRest}).
"""


class LazyHeaders:
    """
    The header fields of a SEND taken by the fast path, before they are
    made: what C{IncomingMessage.headers} holds until first read (it then
    holds what L{build} returns).

    @ivar paths: The To-Path and From-Path fields (shared by the messages of
        one route).
    @ivar rest: The fields after the Message-ID.
    """

    __slots__ = ("paths", "rest")

    def __init__(
        self, paths: tuple[MSRPHeader, MSRPHeader], rest: tuple[MSRPHeader, ...]
    ) -> None:
        self.paths = paths
        self.rest = rest

    def build(self, messageID: str) -> tuple[MSRPHeader, ...]:
        """
        The header fields in wire order, as the parser makes them.

        @param messageID: The Message-ID (its field has one SP after the
            colon, as the fast path checked).
        """
        return (*self.paths, MSRPHeader("Message-ID", messageID, " "), *self.rest)


WholeSend = tuple[
    tuple[MSRPURI, ...],
    tuple[MSRPURI, ...],
    LazyHeaders,
    int | None,
    str,
    FailureReport,
]
"""
What L{WholeSendReceiving.wholeSendReceived} is given of a chunk's header
section: the To-Path, the From-Path, the header fields (made if read), the
Byte-Range total, the Content-Type and the Failure-Report.
"""


def _readRest(parser: MSRPParser, rest: bytes) -> _Rest | None:
    """
    Read the header fields after Message-ID of a SEND chunk.

    @param parser: Parses the header lines (as it would).
    @param rest: The lines, each with its CRLF.
    @return: The fields, the Byte-Range total (L{None} when absent or
        C{*}), the Content-Type (C{""} when absent) and the Failure-Report
        (default applied), or L{None} if the chunk must take the usual path:
        a line the parser refuses, a repeated or unusual field, a malformed
        value, a Byte-Range that does not start at 1, or
        C{Success-Report: yes} (a REPORT follows).
    """
    fields: list[MSRPHeader] = []
    values: dict[str, str] = {}
    if rest:
        for raw in rest[:-2].split(b"\r\n"):
            field = parser.headerField(raw)
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


def _skipMatch(size: int) -> Callable[[bytes, int, int], re.Match[bytes] | None]:
    """
    A matcher for what L{_SIMPLE_SEND_RE} matches with any bytes of a given
    length in place of the To-Path and From-Path lines (groups: transaction
    id, Message-ID): with a check that those bytes are the lines of the
    route tried, it is quicker than L{_SIMPLE_SEND_RE}.  (L{re} caches the
    compiled expression.)

    @param size: The length of the two lines.
    """
    return re.compile(
        rb"MSRP (" + _IDENT_RE + rb") SEND\r\n"
        + b"(?s:.{%d})" % size
        + rb"Message-ID: (" + _IDENT_RE + rb")\r\n"
    ).match


class _Route:
    """
    Where the fast path delivers the SENDs with given To-Path and From-Path
    lines (see L{FastReceiving._route}).

    @ivar receive: The session's C{wholeSendReceived}.
    @ivar toPath: The To-Path.
    @ivar fromPath: The From-Path.
    @ivar fields: The To-Path and From-Path header fields.
    @ivar middle: The bytes of a C{200} between the transaction ids.
    @ivar paths: The two lines, each with its CRLF.
    @ivar match: Matches what L{_SIMPLE_SEND_RE} matches with lines as long
        as these (groups: transaction id, Message-ID); those of a match
        start 12 octets after the transaction id.
    @ivar entries: The rest of a header section to the entry given to
        C{receive}, or L{None} if such a chunk takes the usual path.
    """

    __slots__ = ("receive", "toPath", "fromPath", "fields", "middle", "paths", "match", "entries")

    def __init__(
        self,
        receive: Callable[[bytes, str, bytes, WholeSend], int],
        toPath: tuple[MSRPURI, ...],
        fromPath: tuple[MSRPURI, ...],
        fields: tuple[MSRPHeader, MSRPHeader],
        middle: bytes,
        paths: bytes,
        match: Callable[[bytes, int, int], re.Match[bytes] | None],
    ) -> None:
        self.receive = receive
        self.toPath = toPath
        self.fromPath = fromPath
        self.fields = fields
        self.middle = middle
        self.paths = paths
        self.match = match
        self.entries: dict[bytes, WholeSend | None] = {}

    def entry(self, rest: _Rest | None, raw: bytes) -> WholeSend | None:
        """
        Make (and keep) the entry for a rest of a header section.

        @param rest: What L{_readRest} made of it.
        @param raw: The lines after the Message-ID, each with its CRLF.
        """
        entry: WholeSend | None = None
        if rest is not None:
            fields, declared, contentType, failureReport = rest
            entry = (
                self.toPath,
                self.fromPath,
                LazyHeaders(self.fields, fields),
                declared,
                contentType,
                failureReport,
            )
        if len(raw) <= _ENTRY_KEY_LIMIT:
            entries = self.entries
            if len(entries) >= _ENTRIES_SIZE:
                entries.clear()
            entries[raw] = entry
        return entry


class FastReceiving:
    """
    The receive fast path, as a part of L{MSRPConnection} (which sets the
    attributes declared here).

    Its own state, per connection: the start of a message held until the
    next read, the reads that came from a handler while earlier bytes were
    being handled, the routes by To-Path and From-Path lines (each with its
    header sections seen) and the route of the last SEND.
    """

    _log: Logger
    peer: str
    _parser: MSRPParser
    _sessions: dict[MSRPURI, IMSRPConnectionUser]
    _closed: bool
    _open: bool
    _paused: bool
    _pumping: bool
    _batch: list[bytes] | None
    _priority: deque[bytes]
    _rotation: deque[MSRPURI]

    def _dispatchEvents(self, events: list[MSRPEvent]) -> None:
        """
        Dispatch what the parser returned (L{MSRPConnection}).
        """
        raise NotImplementedError()

    def _queueResponse(self, data: bytes) -> None:
        """
        Send a serialized response (L{MSRPConnection}).
        """
        raise NotImplementedError()

    def _responseMiddle(
        self,
        toPath: tuple[MSRPURI, ...],
        fromPath: tuple[MSRPURI, ...],
        code: int,
        send: bool,
    ) -> bytes | None:
        """
        The bytes of a response between the transaction ids
        (L{MSRPConnection}).
        """
        raise NotImplementedError()

    def _initFastPath(self) -> None:
        """
        Start with nothing held and empty caches.

        Four attributes: with them an L{MSRPConnection} has 30, as many as
        CPython 3.11 keeps in the shared-key layout that makes attribute
        access quick (one more costs about 3% of the time per message:
        C{bench/w9.py}).  So the rests of header sections are cached per
        route only, and the skip matchers come from L{re}'s own cache.
        """
        self._fastTail = b""
        self._fastQueue: list[bytes] | None = None
        self._fastRoutes: dict[bytes, _Route | None] = {}
        self._fastLast: _Route | None = None

    def _forgetRoutes(self) -> None:
        """
        The sessions changed: find every route again.
        """
        self._fastRoutes.clear()
        self._fastLast = None

    def _receiveFast(self, data: bytes) -> None:
        """
        Handle a read: between messages L{_receive} takes the bytes, within
        a message the parser does.  Reads from a handler while earlier
        bytes are being handled come after them.

        @param data: The bytes received.
        """
        queue = self._fastQueue
        if queue is not None:
            queue.append(data)
            return
        queue = self._fastQueue = [data]
        try:
            while queue:
                self._receiveRead(queue.pop(0))
        finally:
            self._fastQueue = None

    def _receiveRead(self, data: bytes) -> None:
        """
        Handle the bytes of one read (after those held).

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

        The usual SEND chunk goes to its session's C{wholeSendReceived}
        and its C{200} is made from cached bytes.  The route of the
        previous such chunk is tried first (its lines compared as bytes),
        then L{_SIMPLE_SEND_RE} and the routes by lines.  Any other
        complete message is framed (on its end-line) and parsed and
        dispatched alone.  An incomplete message is kept for the next read
        while the parser would do nothing with its bytes yet; otherwise it
        is left to the parser.

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
                        route = self._route(paths)
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
                        entry = route.entry(_readRest(parser, rest), rest)
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
                                outcome = HANDLED
                            if outcome == ANSWER_200:
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
                            if outcome == HANDLED:
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
            end = parser.messageEnd(buffer, pos)
            if end > 0:
                self._dispatchEvents(parser.feed(buffer[pos:end]))
                pos = end
                if not parser.idle:
                    return buffer[pos:]
                continue
            if end == -1 and size - pos <= _HOLD_LIMIT and parser.wouldWait(buffer, pos):
                self._fastTail = buffer[pos:] if pos else buffer
                return b""
            return buffer[pos:] if pos else buffer
        return b""

    def _route(self, paths: bytes) -> _Route | None:
        """
        Find where the fast path delivers a SEND with these To-Path and
        From-Path lines (as the connection's dispatch would route it), and
        cache it until the sessions change.

        @param paths: The two lines, each with its CRLF.
        @return: The route; or L{None} if such requests take the usual
            path: a line the parser refuses, more than one To-Path URI, no
            session bound to this connection for it (it may need binding),
            a session that is not a L{WholeSendReceiving}.
        """
        parser = self._parser
        split = paths.find(b"\r\n")
        toEntry = parser.pathField(paths[:split])
        fromEntry = parser.pathField(paths[split + 2 : -2])
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
            middle = self._responseMiddle(toPath, fromPath, 200, True)
            if isinstance(session, WholeSendReceiving) and middle is not None:
                route = _Route(
                    session.wholeSendReceived,
                    toPath,
                    fromPath,
                    (toEntry[1], fromEntry[1]),
                    middle,
                    paths,
                    _skipMatch(len(paths)),
                )
        routes = self._fastRoutes
        if len(routes) >= _ROUTES_SIZE:
            routes.clear()
        routes[paths] = route
        return route


def _requestOf(
    transactionID: bytes,
    toPath: tuple[MSRPURI, ...],
    fromPath: tuple[MSRPURI, ...],
    headers: tuple[MSRPHeader, ...],
    body: bytes,
) -> MSRPRequest:
    """
    The request the parser would have made for a whole SEND of the fast
    path (for the rare answers that need one).
    """
    return MSRPRequest(
        transactionID.decode("ascii"), _SEND, toPath, fromPath, headers, body, Continuation.END
    )


class _HeadersSlot:
    """
    C{IncomingMessage.headers}: the slot of the field, except that a
    L{LazyHeaders} found in it (put there by
    L{WholeSendReceiving.wholeSendReceived}) is replaced by the fields it
    makes on the first read.  So every read (the attribute, C{header}, the
    generated C{__eq__}, C{__hash__} and C{__repr__}, pickling,
    L{dataclasses.replace} and L{dataclasses.asdict}) sees the tuple the
    parser would have made.

    Installed on L{IncomingMessage} when this module is imported, which is
    before any L{LazyHeaders} can be stored there.
    """

    __slots__ = ("slot",)

    def __init__(self, slot: Any) -> None:
        self.slot = slot

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        value = self.slot.__get__(instance, owner)
        if type(value) is LazyHeaders:
            value = value.build(instance.messageID)
            self.slot.__set__(instance, value)
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        self.slot.__set__(instance, value)

    def __delete__(self, instance: Any) -> None:
        self.slot.__delete__(instance)


if not isinstance(vars(IncomingMessage)["headers"], _HeadersSlot):
    setattr(IncomingMessage, "headers", _HeadersSlot(vars(IncomingMessage)["headers"]))


class _IncomingMessageBuilder:
    """
    The layout of L{IncomingMessage} (the same slots, in the same order)
    with plain, writable slots: L{WholeSendReceiving.wholeSendReceived}
    fills one in and then makes it an L{IncomingMessage} by setting its
    C{__class__} (Python allows that only between classes of the same
    layout), which is quicker than the frozen class's C{__init__}.
    """

    __slots__ = IncomingMessage.__slots__


class WholeSendReceiving(Receiving):
    """
    The receive fast path, as a part of L{MSRPSession}:
    L{wholeSendReceived}, which the connection's fast path calls; the rest
    of the receiving side is L{Receiving}.
    """

    def wholeSendReceived(
        self, transactionID: bytes, messageID: str, body: bytes, entry: WholeSend
    ) -> int:
        """
        Take a whole message in one SEND chunk from the connection's fast
        path: what C{requestReceived} does with the request, without the
        request unless something unusual needs it.

        The connection has checked that the chunk ends with C{$}, has a
        valid C{ident} Message-ID, no Byte-Range or one starting at 1, no
        C{Success-Report: yes}, valid report fields, and that its To-Path is
        this session's URI alone.

        @param transactionID: The transaction id (ASCII).
        @param messageID: The Message-ID.
        @param body: The body.
        @param entry: What the connection knows of the chunk's header
            section (cached): the To-Path, the From-Path, the header fields
            (made only if read), the Byte-Range total (if any), the
            Content-Type (C{""} when absent) and the Failure-Report
            (default applied).
        @return: L{NOT_TAKEN} if nothing was done (the chunk needs
            C{requestReceived}: a limit, a refused type, a Message-ID being
            reassembled or rejected before); L{ANSWER_200} if the connection
            must answer 200; L{HANDLED} otherwise.
        """
        toPath, fromPath, headers, declared, contentType, failureReport = entry
        size = len(body)
        maxSize = self.maxMessageSize
        incoming = self._incoming
        if (
            size > maxSize
            or (declared is not None and (declared > maxSize or size > declared))
            or messageID in incoming
            or len(incoming) >= self.maxIncomingMessages
            or messageID in self._rejected
            or not self.accepts(contentType)
        ):
            return NOT_TAKEN
        if not self.remotePath:
            self.remotePath = fromPath
        # IncomingMessage(...), quicker (see _IncomingMessageBuilder); the
        # header fields are made if read (see _HeadersSlot).
        built: Any = _new(_IncomingMessageBuilder)
        built.messageID = messageID
        built.contentType = contentType
        built.body = body
        built.headers = headers
        built.size = size
        built.fromPath = fromPath
        built.toPath = toPath
        built.successReport = False
        built.failureReport = failureReport
        built.__class__ = IncomingMessage
        message: IncomingMessage = built
        try:
            result = self.handler.messageReceived(message)
        except BaseException:
            self._handlerFailed(
                Failure(),  # type: ignore[no-untyped-call]
                _requestOf(transactionID, toPath, fromPath, message.headers, body),
                "messageReceived",
            )
            return HANDLED
        if result is None or (type(result) is int and result == 200):
            # What _delivered does for 200 (no success REPORT is asked for).
            if self.connection is None or failureReport is not FailureReport.YES:
                return HANDLED
            return ANSWER_200
        self._handled(
            result,
            _requestOf(transactionID, toPath, fromPath, message.headers, body),
            message,
        )
        return HANDLED
