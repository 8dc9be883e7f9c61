# -*- test-case-name: tests.msrp.test_session,tests.msrp.test_fastpath -*-
"""
The receiving side of an MSRP session (RFC 4975 sections 7.1.1-7.1.4,
7.3.1, RFC 7701 section 7.1): reassembly and the reports we send.

L{Receiving} (part of L{MSRPSession}): chunks are reassembled by
Message-ID, interleaved and out of order (R-146), with limits (413, R-126,
R-136), C{accept-types} (415, R-147) and a reassembly timer (R-067); a
C{#} chunk drops the message.  The whole message, an L{IncomingMessage},
goes to the handler's C{messageReceived}, whose result decides the
response to the completing chunk; success REPORTs follow when asked for
(R-141), and L{Receiving.sendFailureReport} lets a gateway answer 200
first and report a downstream failure later (R-140).  NICKNAME requests go
to the handler's C{nicknameRequested} (RFC 7701 section 7.1).

The usual whole SEND takes the receive fast path instead
(L{stoxgw.msrp.fastpath}), which gives the same results.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from twisted.internet.defer import maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from stoxgw.msrp.message import (
    ByteRange,
    Continuation,
    FailureReport,
    MSRPHeader,
    MSRPParseError,
    MSRPRequest,
    Status,
    SuccessReport,
    isIdent,
)
from stoxgw.msrp.reports import buildReport, reasonPhrase, reportFor
from stoxgw.msrp.uri import MSRPURI

if TYPE_CHECKING:  # pragma: no cover
    from stoxgw.msrp.protocol import MSRPConnection
    from stoxgw.msrp.session import IMSRPSessionHandler

__all__ = [
    "ALWAYS_ACCEPTED_TYPES",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_REASSEMBLY_TIMEOUT",
    "IncomingMessage",
    "Receiving",
    "mediaType",
    "mediaTypeMatches",
]


DEFAULT_MAX_MESSAGE_SIZE = 1 << 20
"""
The largest incoming message by default (the config's C{max_message_size}).
"""

DEFAULT_REASSEMBLY_TIMEOUT = 120.0
"""
Seconds a partly received message may wait for its next chunk (R-067).
"""

ALWAYS_ACCEPTED_TYPES = ("multipart/mixed", "multipart/alternative", "multipart/signed")
"""
Types every endpoint must receive whatever its C{accept-types} say (RFC 4975
section 7.3.1 and 14.3, R-147, R-162).
"""

# The fast path of _chunkFields: header names (as received) to what
# _sendReceived reads of them (-1 for anything else); each session caches
# the names it meets in a copy of _FIELD_SLOTS.
_CHUNK_FIELDS = {
    "message-id": 0,
    "byte-range": 1,
    "success-report": 2,
    "failure-report": 3,
    "content-type": 4,
}
_FIELD_SLOTS: dict[str, int] = {
    "To-Path": -1,
    "From-Path": -1,
    "Message-ID": 0,
    "Byte-Range": 1,
    "Success-Report": 2,
    "Failure-Report": 3,
    "Content-Type": 4,
}
_FIELD_SLOTS_SIZE = 256
_SUCCESS_REPORTS = {report.value: report for report in SuccessReport}
_FAILURE_REPORTS = {report.value: report for report in FailureReport}
_BYTE_RANGES_SIZE = 1024


def _chunkFields(
    request: MSRPRequest,
    slots: dict[str, int],
    byteRanges: dict[str, ByteRange],
) -> tuple[
    str | None, ByteRange | None, SuccessReport | None, FailureReport | None, str | None
]:
    """
    Read what L{MSRPSession._sendReceived} needs of a SEND: its
    C{messageID}, C{byteRange}, C{successReport}, C{failureReport} and
    C{contentType}, with the accessors' results and errors.

    One pass over the header fields and cached parses give the answer when
    all are valid (the usual case); otherwise the accessors run, in that
    order, and raise the error they raise.

    @param request: The request.
    @param slots: The session's cache of header names (as received) to
        what is read of them (starts as a copy of L{_FIELD_SLOTS}).
    @param byteRanges: The session's cache of Byte-Range values parsed.
    @return: The five values.
    @raise MSRPParseError: As the accessors do.
    """
    values: list[str | None] = [None, None, None, None, None]
    for field in request.headers:
        name = field.name
        slot = slots.get(name)
        if slot is None:
            slot = _CHUNK_FIELDS.get(name.lower(), -1)
            if len(slots) < _FIELD_SLOTS_SIZE:
                slots[name] = slot
        if slot >= 0 and values[slot] is None:
            values[slot] = field.value
    messageID, byteRangeText, successText, failureText, contentType = values
    byteRange = None
    if byteRangeText is not None:
        byteRange = byteRanges.get(byteRangeText)
        if byteRange is None:
            try:
                byteRange = ByteRange.fromString(byteRangeText)
            except ValueError:
                byteRange = None
            else:
                if len(byteRanges) >= _BYTE_RANGES_SIZE:
                    byteRanges.clear()
                byteRanges[byteRangeText] = byteRange
    successReport = None if successText is None else _SUCCESS_REPORTS.get(successText)
    failureReport = None if failureText is None else _FAILURE_REPORTS.get(failureText)
    if (
        (messageID is None or isIdent(messageID))
        and (byteRange is not None or byteRangeText is None)
        and (successReport is not None or successText is None)
        and (failureReport is not None or failureText is None)
    ):
        return messageID, byteRange, successReport, failureReport, contentType
    return (
        request.messageID,
        request.byteRange,
        request.successReport,
        request.failureReport,
        request.contentType,
    )


def mediaType(value: str) -> str:
    """
    The C{type/subtype} of a Content-Type value, lower-cased.

    @param value: The value, possibly with parameters.
    @return: The media type.
    """
    return value.split(";", 1)[0].strip().lower()


def mediaTypeMatches(contentType: str, patterns: Iterable[str]) -> bool:
    """
    Check a media type against C{accept-types} entries (RFC 4975 section
    8.6): C{*} matches everything, C{type/*} a whole type.

    @param contentType: The Content-Type value.
    @param patterns: The accepted types.
    @return: Whether one of them matches.
    """
    wanted = mediaType(contentType)
    major = wanted.split("/", 1)[0]
    for pattern in patterns:
        pattern = mediaType(pattern)
        if pattern in ("*", wanted) or (
            pattern.endswith("/*") and pattern[:-2] == major
        ):
            return True
    return False


class _Reassembly:
    """
    The chunks of one incoming message received so far (R-146).
    """

    def __init__(self, messageID: str) -> None:
        self.messageID = messageID
        self.buffer = bytearray()
        self.ranges: list[tuple[int, int]] = []
        self.total: int | None = None
        self.first: MSRPRequest | None = None
        self.timer: IDelayedCall | None = None

    def add(self, request: MSRPRequest, offset: int, data: bytes) -> None:
        """
        Store one chunk; later data wins over earlier overlapping data.

        @param request: The chunk.
        @param offset: The 0-based position of its first byte.
        @param data: Its body.
        """
        if self.first is None or offset == 0:
            self.first = request
        end = offset + len(data)
        buffer = self.buffer
        if offset > len(buffer):
            buffer.extend(bytes(offset - len(buffer)))
        buffer[offset:end] = data
        if end > offset:
            self._cover(offset, end)

    def _cover(self, start: int, end: int) -> None:
        """
        Merge C{[start, end)} into the received ranges.
        """
        merged: list[tuple[int, int]] = []
        for low, high in self.ranges:
            if high < start or low > end:
                merged.append((low, high))
            else:
                start, end = min(low, start), max(high, end)
        merged.append((start, end))
        merged.sort()
        self.ranges = merged

    @property
    def complete(self) -> bool:
        """
        Whether the total is known and every byte up to it arrived.
        """
        if self.total is None:
            return False
        if self.total == 0:
            return True
        return (
            bool(self.ranges)
            and self.ranges[0][0] == 0
            and self.ranges[0][1] >= self.total
        )


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """
    A complete received message (all chunks reassembled, R-146).

    @ivar messageID: The Message-ID.
    @ivar contentType: The Content-Type of the first chunk.
    @ivar body: The whole body.
    @ivar headers: The header fields of the first chunk (the one starting at
        byte 1).
    @ivar size: The total length (the Byte-Range total).
    @ivar fromPath: The sender's path (where REPORTs go).
    @ivar toPath: The To-Path (own URI).
    @ivar successReport: Whether the sender asked for a success REPORT.
    @ivar failureReport: The sender's Failure-Report value (default applied).
    """

    messageID: str
    contentType: str
    body: bytes
    headers: tuple[MSRPHeader, ...]
    size: int
    fromPath: tuple[MSRPURI, ...]
    toPath: tuple[MSRPURI, ...]
    successReport: bool
    failureReport: FailureReport

    def header(self, name: str) -> str | None:
        """
        Look up a header of the first chunk case-insensitively.

        @param name: The header name.
        @return: The first value, or L{None}.
        """
        lowered = name.lower()
        for field in self.headers:
            if field.name.lower() == lowered:
                return field.value
        return None


class Receiving:
    """
    The receiving half of L{MSRPSession} (which sets the attributes
    declared here): SEND chunks and their reassembly, NICKNAME, and the
    responses and REPORTs we send about what we receive.
    """

    _log: Logger
    localURI: MSRPURI
    handler: IMSRPSessionHandler
    clock: IReactorTime
    connection: MSRPConnection | None
    remotePath: tuple[MSRPURI, ...]
    acceptTypes: tuple[str, ...]
    maxMessageSize: int
    maxIncomingMessages: int
    reassemblyTimeout: float

    def _initReceiving(self) -> None:
        """
        Start with nothing received.
        """
        self._incoming: dict[str, _Reassembly] = {}
        self._rejected: OrderedDict[str, None] = OrderedDict()
        # The caches of _chunkFields: what peers send fills only their own.
        self._fieldSlots = dict(_FIELD_SLOTS)
        self._byteRanges: dict[str, ByteRange] = {}

    @property
    def localPath(self) -> tuple[MSRPURI, ...]:
        """
        Own path (L{MSRPSession}).
        """
        raise NotImplementedError()

    def accepts(self, contentType: str) -> bool:
        """
        Whether an incoming top-level type is acceptable (R-147).

        @param contentType: The Content-Type value.
        """
        if "*" in self.acceptTypes:
            # The usual case; mediaTypeMatches would find it too.
            return True
        return mediaTypeMatches(contentType, self.acceptTypes + ALWAYS_ACCEPTED_TYPES)

    def sendFailureReport(
        self, message: IncomingMessage, code: int, comment: str | None = None
    ) -> bool:
        """
        Report a failure for a message answered with 200 earlier (RFC 4975
        section 7.1.4, R-140): C{Status: 000 code}, Byte-Range of the whole
        message, to the sender's From-Path.  Nothing is sent when the sender
        said C{Failure-Report: no} (R-139).

        @param message: The message.
        @param code: The status code (e.g. 403 when the room refused it).
        @param comment: The comment; by default the reason phrase.
        @return: Whether the REPORT was queued.
        """
        if message.failureReport is FailureReport.NO or self.connection is None:
            return False
        report = buildReport(
            message.fromPath,
            self.localPath,
            message.messageID,
            Status(0, code, reasonPhrase(code) if comment is None else comment),
            ByteRange(1, message.size, message.size),
        )
        self.connection.sendPriority(report)
        return True

    def _nicknameReceived(
        self, connection: MSRPConnection, request: MSRPRequest
    ) -> None:
        """
        Ask the handler about a NICKNAME and answer with its code.
        """
        try:
            nickname = request.useNickname
        except MSRPParseError as e:
            connection.respond(request, e.code)
            return
        if nickname is None:
            connection.respond(request, 424, "missing Use-Nickname")
            return
        d = maybeDeferred(self.handler.nicknameRequested, nickname)
        d.addCallback(self._answer, request)
        d.addErrback(self._handlerFailed, request, "nicknameRequested")

    def _answer(self, code: int | None, request: MSRPRequest) -> None:
        """
        Answer a request with the handler's code, if still bound.
        """
        if self.connection is not None:
            self.connection.respond(request, 200 if code is None else int(code))

    def _handlerFailed(self, reason: Failure, request: MSRPRequest, what: str) -> None:
        """
        The handler raised: log it and answer 403.
        """
        self._log.failure(
            "Handler failed in {what} for {msrpSessionID}",
            reason,
            what=what,
            msrpSessionID=str(self.localURI),
            transactionID=request.transactionID,
        )
        if self.connection is not None:
            self.connection.respond(request, 403, "internal error")

    def _reject(self, messageID: str) -> None:
        """
        Drop a message's chunks and answer its later chunks with 413 too.
        """
        self._drop(messageID)
        self._rejected[messageID] = None
        while len(self._rejected) > 64:
            self._rejected.popitem(last=False)

    def _drop(self, messageID: str) -> None:
        """
        Forget a partial message.
        """
        reassembly = self._incoming.pop(messageID, None)
        if reassembly is not None and reassembly.timer is not None:
            if reassembly.timer.active():
                reassembly.timer.cancel()

    def _reassemblyTimedOut(self, messageID: str) -> None:
        """
        A partial message waited too long for its next chunk (R-067).
        """
        self._incoming.pop(messageID, None)
        self._log.warn(
            "Incomplete message {messageID} in {msrpSessionID} dropped after"
            " {timeout} s",
            messageID=messageID,
            msrpSessionID=str(self.localURI),
            timeout=self.reassemblyTimeout,
        )

    def _refused(self, request: MSRPRequest, code: int, reason: str) -> None:
        """
        Log why a received SEND is refused (the response carries the code).
        """
        self._log.warn(
            "MSRP SEND {transactionID} in {msrpSessionID} refused with {code}: {reason}",
            transactionID=request.transactionID,
            msrpSessionID=str(self.localURI),
            code=code,
            reason=reason,
        )

    def _sendReceived(self, connection: MSRPConnection, request: MSRPRequest) -> None:
        """
        Take one SEND chunk (R-136, R-146, R-147, R-126).
        """
        body = request.body
        if body is None:
            # Bodiless SEND: opens the session or keeps it alive.
            connection.respond(request, 200)
            return
        try:
            (
                messageID,
                byteRange,
                successReport,
                failureReport,
                contentTypeValue,
            ) = _chunkFields(request, self._fieldSlots, self._byteRanges)
        except MSRPParseError as e:
            connection.respond(request, e.code)
            return
        if messageID is None:
            connection.respond(request, 400, "missing Message-ID")
            return
        if messageID in self._rejected:
            connection.respond(request, 413)
            return
        contentType = contentTypeValue or ""
        if not self.accepts(contentType):
            self._drop(messageID)
            self._refused(request, 415, f"content type {contentType or '(none)'} not accepted")
            connection.respond(request, 415)
            return
        offset = 0 if byteRange is None else byteRange.start - 1
        declared = None if byteRange is None else byteRange.total
        end = offset + len(body)
        if (declared is not None and declared > self.maxMessageSize) or (
            end > self.maxMessageSize
        ):
            self._reject(messageID)
            self._refused(
                request, 413, f"message larger than max_message_size ({self.maxMessageSize} octets)"
            )
            connection.respond(request, 413)
            return
        if declared is not None and end > declared:
            self._drop(messageID)
            connection.respond(request, 400, "chunk beyond Byte-Range total")
            return
        if request.continuation is Continuation.ABORT:
            self._drop(messageID)
            connection.respond(request, 200)
            return
        wantsReport = successReport is SuccessReport.YES
        if failureReport is None:
            failureReport = FailureReport.YES
        reassembly = self._incoming.get(messageID)
        if reassembly is None:
            if len(self._incoming) >= self.maxIncomingMessages:
                self._refused(
                    request, 413, f"more than {self.maxIncomingMessages} messages in progress"
                )
                connection.respond(request, 413, "too many messages in progress")
                return
            if offset == 0 and request.continuation is Continuation.END:
                # A whole message in one chunk: what reassembling it would
                # give, without the reassembly.
                self._deliver(
                    request,
                    messageID,
                    body,
                    end,
                    contentType,
                    request.headers,
                    wantsReport,
                    failureReport,
                )
                return
            reassembly = self._incoming[messageID] = _Reassembly(messageID)
        reassembly.add(request, offset, body)
        if request.continuation is Continuation.END:
            reassembly.total = end
        elif reassembly.total is None and declared is not None:
            reassembly.total = declared
        if reassembly.timer is not None and reassembly.timer.active():
            reassembly.timer.cancel()
        reassembly.timer = None
        if not reassembly.complete:
            reassembly.timer = self.clock.callLater(
                self.reassemblyTimeout, self._reassemblyTimedOut, messageID
            )
            connection.respond(request, 200)
            return
        del self._incoming[messageID]
        total = reassembly.total or 0
        first = reassembly.first or request
        self._deliver(
            request,
            messageID,
            bytes(reassembly.buffer[:total]),
            total,
            first.contentType or contentType,
            first.headers,
            wantsReport,
            failureReport,
        )

    def _deliver(
        self,
        request: MSRPRequest,
        messageID: str,
        body: bytes,
        size: int,
        contentType: str,
        headers: tuple[MSRPHeader, ...],
        successReport: bool,
        failureReport: FailureReport,
    ) -> None:
        """
        Give a complete message to the handler; its result answers the
        completing chunk, then a success REPORT follows if asked (R-141).

        @param request: The completing chunk.
        @param messageID: Its Message-ID.
        @param body: The whole body.
        @param size: The total length.
        @param contentType: The Content-Type of the first chunk (else of the
            completing one, else C{""}).
        @param headers: The header fields of the first chunk.
        @param successReport: Whether the completing chunk asks for a
            success REPORT.
        @param failureReport: Its Failure-Report value (default applied).
        """
        message = IncomingMessage(
            messageID,
            contentType,
            body,
            headers,
            size,
            request.fromPath,
            request.toPath,
            successReport,
            failureReport,
        )
        # maybeDeferred, without a Deferred for the usual synchronous result.
        try:
            result = self.handler.messageReceived(message)
        except BaseException:
            self._handlerFailed(
                Failure(), request, "messageReceived"  # type: ignore[no-untyped-call]
            )
            return
        self._handled(result, request, message)

    def _handled(self, result: Any, request: MSRPRequest, message: IncomingMessage) -> None:
        """
        Answer a delivered message with what C{messageReceived} returned
        (or, for a L{Deferred}, once it fires).

        @param result: What the handler returned.
        @param request: The completing chunk.
        @param message: The message.
        """
        if result is None or type(result) is int:
            try:
                self._delivered(result, request, message)
            except BaseException:
                self._handlerFailed(
                    Failure(), request, "messageReceived"  # type: ignore[no-untyped-call]
                )
            return
        d = maybeDeferred(lambda: result)
        d.addCallback(self._delivered, request, message)
        d.addErrback(self._handlerFailed, request, "messageReceived")

    def _delivered(
        self, code: int | None, request: MSRPRequest, message: IncomingMessage
    ) -> None:
        """
        Answer the completing chunk and send the success REPORT.
        """
        connection = self.connection
        if connection is None:
            return
        status = 200 if code is None else int(code)
        # connection.respond(request, status) for a SEND whose
        # Failure-Report is known already.
        connection._respond(request, status, message.failureReport)
        if status == 200 and message.successReport:
            connection.sendPriority(
                reportFor(
                    request,
                    200,
                    fromURI=self.localURI,
                    byteRange=ByteRange(1, message.size, message.size),
                )
            )
