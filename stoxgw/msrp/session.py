# -*- test-case-name: tests.msrp.test_session -*-
"""
MSRP chat sessions (RFC 4975 sections 5-8, RFC 7701 section 7).

An L{MSRPSession} is one MSRP session: its own path URI, the peer's path
and capabilities from SDP, and the messages in flight both ways.  It is
bound to an L{MSRPConnection} (actively after connecting, or passively by
the first request that names it, R-144, R-157) and talks to the layer above
through an L{IMSRPSessionHandler}.

Outgoing: L{MSRPSession.sendMessage} checks the peer's C{accept-types} and
C{max-size} (R-158, R-159), queues the message on the connection (which cuts
it into chunks), runs a transaction timer per chunk from the moment it is
written (R-137, on the injected clock), waits for the success REPORT when one
was asked for, and ends exactly once: with a L{SendResult}, or with an
L{MSRPSendError} for an error response, a failure REPORT, a timeout (408),
the loss of the connection or the closing of the session.

Incoming: chunks are reassembled by Message-ID, interleaved and out of order
(R-146), with limits (413, R-126, R-136), C{accept-types} (415, R-147) and a
reassembly timer (R-067); a C{#} chunk drops the message.  The whole message
goes to L{IMSRPSessionHandler.messageReceived}, whose result decides the
response to the completing chunk; success REPORTs follow when asked for
(R-141), and L{MSRPSession.sendFailureReport} lets a gateway answer 200
first and report a downstream failure later (R-140).  NICKNAME requests go
to L{IMSRPSessionHandler.nicknameRequested} (RFC 7701 section 7.1).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Iterable, Sequence, cast
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from stoxgw._util import failureOf
from stoxgw.msrp.message import (
    ByteRange,
    Continuation,
    FailureReport,
    MSRPHeader,
    MSRPMethod,
    MSRPParseError,
    MSRPRequest,
    MSRPResponse,
    Status,
    SuccessReport,
    buildRequest,
    generateMessageID,
    isIdent,
)
from stoxgw.msrp.fastpath import WholeSendReceiving
from stoxgw.msrp.incoming import IncomingMessage
from stoxgw.msrp.protocol import (
    DEFAULT_CHUNK_SIZE,
    ChunkedSend,
    IMSRPConnectionUser,
    MSRPConnection,
    SingleRequest,
)
from stoxgw.msrp.reports import buildReport, reasonPhrase, reportFor
from stoxgw.msrp.uri import MSRPURI

__all__ = [
    "ALWAYS_ACCEPTED_TYPES",
    "DEFAULT_TRANSACTION_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "LOCAL_FAILURE",
    "MSRPSendError",
    "SendResult",
    "IncomingMessage",
    "SessionState",
    "IMSRPSessionHandler",
    "IMSRPSession",
    "MSRPSession",
    "mediaTypeMatches",
]

DEFAULT_TRANSACTION_TIMEOUT = 30.0
"""
Seconds to wait for a transaction response (RFC 4975 section 7.1.1, R-137).
"""

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

LOCAL_FAILURE = 0
"""
The L{MSRPSendError.code} of failures without an MSRP status: connection
lost, session closed, session not usable.
"""

_SEND = MSRPMethod.SEND.value
_REPORT = MSRPMethod.REPORT.value
_NICKNAME = MSRPMethod.NICKNAME.value

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


class MSRPSendError(Exception):
    """
    An outgoing request failed.

    @ivar code: The MSRP status code (from a response or a failure REPORT;
        408 for a local transaction timeout, R-137; 415 or 413 for a message
        refused locally, R-158, R-159), or L{LOCAL_FAILURE}.
    @ivar reason: The comment or a description.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.code} {self.reason}"


@dataclass(frozen=True, slots=True)
class SendResult:
    """
    How an outgoing message or NICKNAME ended well.

    @ivar messageID: The Message-ID (L{None} for NICKNAME).
    @ivar size: The body length.
    @ivar code: The status of the last response (200), or L{None} when none
        was expected (C{Failure-Report: no} or C{partial}).
    @ivar successReported: Whether a success REPORT covering all bytes came.
    """

    messageID: str | None
    size: int
    code: int | None
    successReported: bool


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


class SessionState(Enum):
    """
    The life of a session.

    @cvar WAITING: Created, not yet bound to a connection.
    @cvar BOUND: Bound; messages flow.
    @cvar FAILED: The connection failed or the peer said 481 (R-145,
        R-148); final.
    @cvar CLOSED: Closed locally; final.
    """

    WAITING = "waiting"
    BOUND = "bound"
    FAILED = "failed"
    CLOSED = "closed"


_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.WAITING: frozenset(
        {SessionState.BOUND, SessionState.FAILED, SessionState.CLOSED}
    ),
    SessionState.BOUND: frozenset({SessionState.FAILED, SessionState.CLOSED}),
    SessionState.FAILED: frozenset(),
    SessionState.CLOSED: frozenset(),
}


class IMSRPSessionHandler(Interface):
    """
    What an L{MSRPSession} calls on the layer above (the chat session).
    """

    def sessionBound() -> None:
        """
        The session is bound to a connection: messages can flow.
        """

    def messageReceived(message: IncomingMessage) -> Any:
        """
        A complete message arrived.

        @param message: The message.
        @return: The status for the response to the completing chunk:
            L{None} or 200 to accept, an error code (403, 404, 415, 428...)
            to reject, or a L{Deferred} firing with one of those.  A gateway
            may accept first and call L{IMSRPSession.sendFailureReport}
            later (RFC 4975 section 7.1.4, R-140).
        """

    def nicknameRequested(nickname: str) -> Any:
        """
        The peer sent NICKNAME (RFC 7701 section 7.1).

        @param nickname: The requested nickname, unquoted (C{""} removes it).
        @return: The response code (200, 403, 423, 425...) or a L{Deferred}
            firing with it.
        """

    def sessionFailed(reason: Failure) -> None:
        """
        The session is gone: its connection failed or was lost, or the peer
        answered 481 (R-145, R-148).  Pending sends have failed already.

        @param reason: Why.
        """


class SessionHandler(TypingProtocol):
    """
    The static type of an L{IMSRPSessionHandler} provider (mypy does not
    read zope interfaces without its plugin).
    """

    def sessionBound(self) -> None:
        """
        See L{IMSRPSessionHandler.sessionBound}.
        """

    def messageReceived(self, message: IncomingMessage) -> Any:
        """
        See L{IMSRPSessionHandler.messageReceived}.
        """

    def nicknameRequested(self, nickname: str) -> Any:
        """
        See L{IMSRPSessionHandler.nicknameRequested}.
        """

    def sessionFailed(self, reason: Failure) -> None:
        """
        See L{IMSRPSessionHandler.sessionFailed}.
        """


class DelayedCall(TypingProtocol):
    """
    The static type of an L{twisted.internet.interfaces.IDelayedCall} provider, as used here.
    """

    def active(self) -> bool:
        """
        Whether the call is still scheduled.
        """

    def cancel(self) -> None:
        """
        Unschedule the call.
        """


class Clock(TypingProtocol):
    """
    The static type of an L{IReactorTime} provider, as used here.
    """

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> DelayedCall:
        """
        Schedule a call.
        """



def _cancel(call: DelayedCall | None) -> None:
    """
    Cancel a timer if it is still scheduled.

    @param call: The timer, or L{None}.
    """
    if call is not None and call.active():
        call.cancel()


class IMSRPSession(IMSRPConnectionUser):
    """
    One MSRP chat session, as the layer above sees it.
    """

    localURI = Attribute("Own path URI (L{MSRPURI}), unique per session (R-154).")
    remotePath = Attribute("The peer's path from SDP, leftmost first.")
    state = Attribute("The L{SessionState}.")

    def sendMessage(
        contentType: str,
        body: bytes,
        messageID: str | None = None,
        successReport: bool = False,
        failureReport: FailureReport | str = FailureReport.YES,
        extraHeaders: Iterable[tuple[str, str]] = (),
    ) -> Deferred[SendResult]:
        """
        Send a message (chunked as needed).

        @return: A L{Deferred} that fires once with a L{SendResult}, or fails
            once with L{MSRPSendError}.
        """

    def sendNickname(nickname: str) -> Deferred[int]:
        """
        Send NICKNAME (RFC 7701 section 7.1).

        @return: A L{Deferred} firing with 200, or failing with
            L{MSRPSendError} (424, 425, 403...).
        """

    def sendFailureReport(
        message: IncomingMessage, code: int, comment: str | None = None
    ) -> bool:
        """
        Report a failure for a message already answered with 200 (R-140).

        @return: Whether a REPORT was sent.
        """

    def close() -> None:
        """
        End the session locally: pending sends fail, the connection is left
        (and closed if no other session uses it).
        """


def _mediaType(value: str) -> str:
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
    mediaType = _mediaType(contentType)
    major = mediaType.split("/", 1)[0]
    for pattern in patterns:
        pattern = _mediaType(pattern)
        if pattern in ("*", mediaType) or (
            pattern.endswith("/*") and pattern[:-2] == major
        ):
            return True
    return False


def _quoteNickname(nickname: str) -> str:
    """
    Make the C{Use-Nickname} value (RFC 7701 section 7.1: a quoted-string).

    @param nickname: The nickname.
    @return: The quoted value.
    """
    return '"' + nickname.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _PendingSend:
    """
    One outgoing message or NICKNAME until it ends (exactly once).
    """

    def __init__(
        self,
        session: MSRPSession,
        messageID: str | None,
        size: int,
        successReport: bool,
        failureReport: FailureReport,
    ) -> None:
        self.session = session
        self.messageID = messageID
        self.size = size
        self.successReport = successReport
        self.failureReport = failureReport
        self.deferred: Deferred[SendResult] = Deferred(self._cancel)
        self.source: ChunkedSend | SingleRequest | None = None
        self.timers: dict[str, DelayedCall] = {}
        self.transactionIDs: list[str] = []
        self.allWritten = False
        self.transactionsDone = False
        self.reportDone = not successReport
        self.reportTimer: DelayedCall | None = None
        self.reported: list[tuple[int, int]] = []
        self.lastCode: int | None = None
        self.ended = False

    # ChunkListener

    def chunkWritten(self, request: MSRPRequest, last: bool) -> None:
        """
        Start the transaction timer of a written chunk (R-137).
        """
        if self.ended:
            return
        tid = request.transactionID
        self.transactionIDs.append(tid)
        if self.failureReport is FailureReport.YES:
            self.timers[tid] = self.session.clock.callLater(
                self.session.transactionTimeout, self._timedOut, tid
            )
        if last:
            self.allWritten = True
            self._checkTransactions()

    def responseReceived(self, request: MSRPRequest, response: MSRPResponse) -> None:
        """
        A chunk was answered: an error ends the send (R-148).
        """
        if self.ended:
            return
        timer = self.timers.pop(request.transactionID, None)
        if timer is not None and timer.active():
            timer.cancel()
        if response.code != 200:
            self._refused(response.code, response.comment)
            return
        self.lastCode = response.code
        self._checkTransactions()

    def _refused(self, code: int, comment: str | None) -> None:
        """
        The peer refused the message (an error response or a failure
        REPORT): the send ends with that code (R-148).

        @param code: The status code.
        @param comment: The comment; by default the reason phrase.
        """
        self.session._sendFailed(
            self, MSRPSendError(code, comment or reasonPhrase(code) or "")
        )

    def _checkTransactions(self) -> None:
        """
        Note when every chunk is written and (with C{Failure-Report: yes})
        answered.
        """
        if self.allWritten and not self.timers and not self.transactionsDone:
            self.transactionsDone = True
            self._check()

    def _timedOut(self, transactionID: str) -> None:
        """
        No response in time: 408 semantics (R-137, R-148).
        """
        self.timers.pop(transactionID, None)
        self.session._log.warn(
            "MSRP transaction {transactionID} of {msrpSessionID} timed out",
            transactionID=transactionID,
            msrpSessionID=str(self.session.localURI),
        )
        self.fail(
            MSRPSendError(
                408, f"no response within {self.session.transactionTimeout:g} s"
            )
        )

    def reportReceived(self, status: Status, byteRange: ByteRange | None) -> None:
        """
        A REPORT for this message arrived (RFC 4975 section 7.1.2).
        """
        if self.ended:
            return
        if status.code != 200:
            self._refused(status.code, status.comment)
            return
        if not self.successReport:
            return
        if byteRange is None:
            start, end = 1, self.size
        else:
            start = byteRange.start
            end = self.size if byteRange.end is None else byteRange.end
        self.reported.append((start, end))
        if self._coversAll():
            self.reportDone = True
            if self.reportTimer is not None and self.reportTimer.active():
                self.reportTimer.cancel()
            self.reportTimer = None
            self._check()

    def _coversAll(self) -> bool:
        """
        Whether the success REPORTs together cover every byte.
        """
        if self.size == 0:
            return bool(self.reported)
        covered = 0
        for start, end in sorted(self.reported):
            if start > covered + 1:
                return False
            covered = max(covered, end)
        return covered >= self.size

    def _check(self) -> None:
        """
        End successfully once the transactions and the report are done.
        """
        if self.ended or not self.transactionsDone:
            return
        if self.reportDone:
            self.succeed()
        elif self.reportTimer is None:
            self.reportTimer = self.session.clock.callLater(
                self.session.transactionTimeout, self._reportTimedOut
            )

    def _reportTimedOut(self) -> None:
        """
        The success REPORT did not come in time.
        """
        self.reportTimer = None
        self.fail(
            MSRPSendError(
                408, f"no success report within {self.session.transactionTimeout:g} s"
            )
        )

    def succeed(self) -> None:
        """
        End with a L{SendResult}.
        """
        if self.ended:
            return
        self._end()
        self.deferred.callback(
            SendResult(self.messageID, self.size, self.lastCode, self.successReport)
        )

    def fail(self, error: MSRPSendError) -> None:
        """
        End with an error.
        """
        if self.ended:
            return
        self._end()
        self.deferred.errback(error)

    def _cancel(self, deferred: Deferred[SendResult]) -> None:
        """
        The caller cancelled: stop sending (the L{Deferred} fails with
        C{CancelledError}).
        """
        self._end()

    def _end(self) -> None:
        """
        Cancel the timers, stop the chunks, forget the transactions.
        """
        self.ended = True
        for timer in self.timers.values():
            if timer.active():
                timer.cancel()
        self.timers.clear()
        if self.reportTimer is not None and self.reportTimer.active():
            self.reportTimer.cancel()
        self.reportTimer = None
        if self.source is not None:
            self.source.abort()
        connection = self.session.connection
        if connection is not None:
            for tid in self.transactionIDs:
                connection.forgetTransaction(tid)
        self.session._sendEnded(self)


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
        self.timer: DelayedCall | None = None

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


@implementer(IMSRPSession)
class MSRPSession(WholeSendReceiving):
    """
    One MSRP chat session.

    @ivar localURI: Own path URI.
    @ivar handler: The layer above.
    @ivar clock: Time source for all timers.
    @ivar remotePath: The peer's path (from SDP), leftmost first.
    @ivar acceptTypes: Own C{accept-types} (incoming 415 check, R-147).
    @ivar acceptWrappedTypes: Own C{accept-wrapped-types} (for SDP; the
        wrapped check needs the CPIM parser, so the handler does it).
    @ivar maxMessageSize: The largest incoming message (413 beyond, R-126).
    @ivar peerAcceptTypes: The peer's C{accept-types}, or L{None} if unknown
        (then anything is sent, R-158).
    @ivar peerAcceptWrappedTypes: The peer's C{accept-wrapped-types}.
    @ivar peerMaxSize: The peer's C{max-size}, or L{None} (R-159).
    @ivar chunkSize: The largest outgoing chunk body (R-135).
    @ivar transactionTimeout: Seconds to wait for a response (R-137).
    @ivar reassemblyTimeout: Seconds a partial message waits for a chunk.
    @ivar maxIncomingMessages: How many messages may be in reassembly at
        once (413 beyond).
    @ivar connection: The bound connection, or L{None}.
    @ivar state: The L{SessionState}.
    """

    _log = Logger()

    def __init__(
        self,
        localURI: MSRPURI,
        handler: SessionHandler,
        clock: IReactorTime | Clock,
        *,
        remotePath: Sequence[MSRPURI] = (),
        acceptTypes: Sequence[str] = ("*",),
        acceptWrappedTypes: Sequence[str] = (),
        maxMessageSize: int = DEFAULT_MAX_MESSAGE_SIZE,
        peerAcceptTypes: Sequence[str] | None = None,
        peerAcceptWrappedTypes: Sequence[str] = (),
        peerMaxSize: int | None = None,
        chunkSize: int = DEFAULT_CHUNK_SIZE,
        transactionTimeout: float = DEFAULT_TRANSACTION_TIMEOUT,
        reassemblyTimeout: float = DEFAULT_REASSEMBLY_TIMEOUT,
        maxIncomingMessages: int = 16,
        onEnd: Callable[[MSRPSession], None] | None = None,
    ) -> None:
        """
        @param onEnd: Called once when the session fails or closes (the
            endpoint forgets it then).
        """
        self.localURI = localURI
        self.handler = handler
        self.clock = cast(Clock, clock)
        self.remotePath: tuple[MSRPURI, ...] = tuple(remotePath)
        self.acceptTypes = tuple(acceptTypes)
        self.acceptWrappedTypes = tuple(acceptWrappedTypes)
        self.maxMessageSize = maxMessageSize
        self.peerAcceptTypes = (
            None if peerAcceptTypes is None else tuple(peerAcceptTypes)
        )
        self.peerAcceptWrappedTypes = tuple(peerAcceptWrappedTypes)
        self.peerMaxSize = peerMaxSize
        self.chunkSize = chunkSize
        self.transactionTimeout = transactionTimeout
        self.reassemblyTimeout = reassemblyTimeout
        self.maxIncomingMessages = maxIncomingMessages
        self.connection: MSRPConnection | None = None
        self.state = SessionState.WAITING
        self._onEnd = onEnd
        self._outbox: list[ChunkedSend | SingleRequest] = []
        self._pending: list[_PendingSend] = []
        self._byMessageID: dict[str, _PendingSend] = {}
        self._incoming: dict[str, _Reassembly] = {}
        self._rejected: OrderedDict[str, None] = OrderedDict()
        # The caches of _chunkFields: what peers send fills only their own.
        self._fieldSlots = dict(_FIELD_SLOTS)
        self._byteRanges: dict[str, ByteRange] = {}

    def __repr__(self) -> str:
        return f"<MSRPSession {self.localURI} {self.state.value}>"

    @property
    def localPath(self) -> tuple[MSRPURI, ...]:
        """
        Own path for SDP C{a=path} (R-154).
        """
        return (self.localURI,)

    @property
    def pendingSends(self) -> int:
        """
        How many sends have not ended yet.
        """
        return len(self._pending)

    def _setState(self, state: SessionState) -> None:
        """
        Move to C{state} along L{_TRANSITIONS}.

        @raise ValueError: For a transition the table does not allow.
        """
        if state not in _TRANSITIONS[self.state]:
            raise ValueError(f"MSRP session cannot go from {self.state} to {state}")
        self.state = state

    def updatePeer(
        self,
        remotePath: Sequence[MSRPURI] | None = None,
        acceptTypes: Sequence[str] | None = None,
        acceptWrappedTypes: Sequence[str] | None = None,
        maxSize: int | None = None,
    ) -> None:
        """
        Take the peer's SDP (answer or re-offer, R-156).

        @param remotePath: The peer's C{a=path}, if given.
        @param acceptTypes: The peer's C{accept-types}, if given.
        @param acceptWrappedTypes: The peer's C{accept-wrapped-types}.
        @param maxSize: The peer's C{max-size}.
        """
        if remotePath is not None:
            self.remotePath = tuple(remotePath)
        if acceptTypes is not None:
            self.peerAcceptTypes = tuple(acceptTypes)
        if acceptWrappedTypes is not None:
            self.peerAcceptWrappedTypes = tuple(acceptWrappedTypes)
        if maxSize is not None:
            self.peerMaxSize = maxSize

    def peerAccepts(self, contentType: str, wrapped: bool = False) -> bool:
        """
        Whether the peer declared it accepts a type (R-158).

        @param contentType: The media type.
        @param wrapped: Check C{accept-wrapped-types} (and C{accept-types})
            instead of only C{accept-types}.
        @return: C{True} also when the peer's types are unknown.
        """
        if self.peerAcceptTypes is None:
            return True
        if mediaTypeMatches(contentType, self.peerAcceptTypes):
            return True
        return wrapped and mediaTypeMatches(contentType, self.peerAcceptWrappedTypes)

    def accepts(self, contentType: str) -> bool:
        """
        Whether an incoming top-level type is acceptable (R-147).

        @param contentType: The Content-Type value.
        """
        if "*" in self.acceptTypes:
            # The usual case; mediaTypeMatches would find it too.
            return True
        return mediaTypeMatches(contentType, self.acceptTypes + ALWAYS_ACCEPTED_TYPES)

    # -- binding -----------------------------------------------------------

    def bind(self, connection: MSRPConnection, active: bool) -> None:
        """
        Bind to a connection (R-144); the active side sends a bodiless SEND
        at once (R-157, RFC 6135).  Messages queued before are sent now.

        @param connection: The connection.
        @param active: Whether this side opened it.
        @raise ValueError: If the session is not waiting for a connection.
        """
        if self.connection is connection:
            return
        self._setState(SessionState.BOUND)
        connection.attach(self)
        self.connection = connection
        self._log.info(
            "MSRP session {msrpSessionID} bound to {peer}",
            msrpSessionID=str(self.localURI),
            peer=connection.peer,
        )
        if active and self.remotePath:
            self._sendBodiless()
        outbox, self._outbox = self._outbox, []
        for source in outbox:
            if not source.done:
                connection.sendStream(self, source)
        try:
            self.handler.sessionBound()
        except Exception:
            self._log.failure(
                "Handler failed in sessionBound for {msrpSessionID}",
                msrpSessionID=str(self.localURI),
            )

    def _sendBodiless(self) -> None:
        """
        Send the bodiless SEND that opens the session (R-157).
        """
        self._bodiless().addErrback(self._bodilessFailed)

    def _bodiless(self) -> Deferred[SendResult]:
        """
        Queue a SEND without a body (RFC 4975 section 7.1.1), answered like
        any other (C{Failure-Report} defaults to C{yes}).
        """
        request = buildRequest(
            MSRPMethod.SEND,
            self.remotePath,
            self.localPath,
            [("Message-ID", generateMessageID()), ("Byte-Range", "1-0/0")],
        )
        return self._start(
            None, 0, False, FailureReport.YES, lambda p: SingleRequest(request, p)
        )

    def sendKeepalive(self) -> Deferred[SendResult]:
        """
        Probe the peer with a bodiless SEND (RFC 4975 section 7.1.1: a SEND
        need not carry a body; the peer answers it and delivers nothing):
        MSRP has no keepalive of its own, and only an answer shows that the
        peer, not just its kernel, is still there.

        @return: Fires when the peer answered 200; fails with
            L{MSRPSendError} on an error response, no response within the
            transaction timeout (408), a lost connection or a session that
            is not usable.
        """
        unusable = self._usable()
        if unusable is not None:
            return fail(unusable)
        return self._bodiless()

    def _bodilessFailed(self, reason: Failure) -> None:
        """
        Log a failed bodiless SEND (a 481 has failed the session already).
        """
        self._log.warn(
            "Opening SEND of MSRP session {msrpSessionID} failed: {error}",
            msrpSessionID=str(self.localURI),
            error=reason.getErrorMessage(),
        )

    def connectionLost(self, connection: MSRPConnection, reason: Failure) -> None:
        """
        The bound connection is gone: the session fails (R-145).
        """
        if connection is not self.connection:
            return
        self.connection = None
        self._fail(reason)

    def connectionFailed(self, reason: Failure) -> None:
        """
        The connection attempt for this session failed.

        @param reason: Why.
        """
        if self.state is SessionState.WAITING:
            self._fail(reason)

    def _fail(self, reason: Failure) -> None:
        """
        Fail the session: pending sends fail, the handler is told.
        """
        if self.state in (SessionState.FAILED, SessionState.CLOSED):
            return
        self._setState(SessionState.FAILED)
        self._log.info(
            "MSRP session {msrpSessionID} failed: {error}",
            msrpSessionID=str(self.localURI),
            error=reason.getErrorMessage(),
        )
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.detach(self)
        self._endAll(
            MSRPSendError(LOCAL_FAILURE, f"session failed: {reason.getErrorMessage()}")
        )
        try:
            self.handler.sessionFailed(reason)
        except Exception:
            self._log.failure(
                "Handler failed in sessionFailed for {msrpSessionID}",
                msrpSessionID=str(self.localURI),
            )
        self._ended()

    def close(self) -> None:
        """
        End the session locally.
        """
        if self.state in (SessionState.FAILED, SessionState.CLOSED):
            return
        self._setState(SessionState.CLOSED)
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.detach(self)
        self._endAll(MSRPSendError(LOCAL_FAILURE, "session closed"))
        self._ended()

    def _endAll(self, error: MSRPSendError) -> None:
        """
        Fail every pending send and drop every partial incoming message.
        """
        self._outbox.clear()
        for pending in list(self._pending):
            pending.fail(error)
        for reassembly in self._incoming.values():
            if reassembly.timer is not None and reassembly.timer.active():
                reassembly.timer.cancel()
        self._incoming.clear()

    def _ended(self) -> None:
        """
        Tell the owner once.
        """
        onEnd, self._onEnd = self._onEnd, None
        if onEnd is not None:
            onEnd(self)

    # -- outgoing ----------------------------------------------------------

    def _usable(self) -> MSRPSendError | None:
        """
        Why nothing can be sent now, or L{None}.
        """
        if self.state in (SessionState.FAILED, SessionState.CLOSED):
            return MSRPSendError(LOCAL_FAILURE, f"session {self.state.value}")
        if not self.remotePath:
            return MSRPSendError(LOCAL_FAILURE, "remote path unknown")
        return None

    def _start(
        self,
        messageID: str | None,
        size: int,
        successReport: bool,
        failureReport: FailureReport,
        makeSource: Callable[[_PendingSend], ChunkedSend | SingleRequest],
    ) -> Deferred[SendResult]:
        """
        Register a pending send and queue its source (on the connection, or
        until the session is bound).
        """
        pending = _PendingSend(self, messageID, size, successReport, failureReport)
        source = makeSource(pending)
        pending.source = source
        self._pending.append(pending)
        if messageID is not None:
            self._byMessageID[messageID] = pending
        if self.connection is not None:
            self.connection.sendStream(self, source)
        else:
            self._outbox.append(source)
        return pending.deferred

    def sendMessage(
        self,
        contentType: str,
        body: bytes,
        messageID: str | None = None,
        successReport: bool = False,
        failureReport: FailureReport | str = FailureReport.YES,
        extraHeaders: Iterable[tuple[str, str]] = (),
    ) -> Deferred[SendResult]:
        """
        Send a message, cut into chunks (R-132-R-135).

        The L{Deferred} fires once: with a L{SendResult} after the 200 for
        every chunk (C{Failure-Report: yes}) or after the last byte is
        written (C{no}, C{partial}: error responses that arrive before then
        still fail it), and, with C{successReport}, after success REPORTs
        cover every byte; or with L{MSRPSendError} for an error response or
        failure REPORT (its code), a missing response or report (408,
        R-137), a type the peer does not accept (415, R-158), a body above
        the peer's C{max-size} (413, R-159), or a lost connection or closed
        session (L{LOCAL_FAILURE}).  Cancelling it stops the chunks.

        @param contentType: The Content-Type.
        @param body: The body.
        @param messageID: The Message-ID (keep the original one when
            resending after a failure, R-145); by default a new one.
        @param successReport: Ask for a success REPORT.
        @param failureReport: C{yes}, C{no} or C{partial}.
        @param extraHeaders: Further header fields for every chunk.
        """
        unusable = self._usable()
        if unusable is not None:
            return fail(unusable)
        try:
            report = FailureReport(failureReport)
        except ValueError:
            return fail(
                MSRPSendError(LOCAL_FAILURE, f"bad Failure-Report {failureReport!r}")
            )
        if not self.peerAccepts(contentType):
            return fail(
                MSRPSendError(415, f"peer does not accept {_mediaType(contentType)}")
            )
        if self.peerMaxSize is not None and len(body) > self.peerMaxSize:
            return fail(
                MSRPSendError(
                    413,
                    f"{len(body)} octets exceed the peer's max-size {self.peerMaxSize}",
                )
            )
        if messageID is None:
            messageID = generateMessageID()
        if messageID in self._byMessageID:
            return fail(MSRPSendError(LOCAL_FAILURE, f"Message-ID {messageID} in use"))
        headers: list[tuple[str, str]] = []
        if successReport:
            headers.append(("Success-Report", "yes"))
        if report is not FailureReport.YES:
            headers.append(("Failure-Report", report.value))
        headers.extend(extraHeaders)
        remotePath, localPath, chunkSize = (
            self.remotePath,
            self.localPath,
            self.chunkSize,
        )
        mid = messageID

        def makeSource(pending: _PendingSend) -> ChunkedSend:
            return ChunkedSend(
                remotePath,
                localPath,
                mid,
                contentType,
                body,
                pending,
                headers,
                chunkSize,
            )

        try:
            return self._start(messageID, len(body), successReport, report, makeSource)
        except ValueError as e:
            return fail(MSRPSendError(LOCAL_FAILURE, str(e)))

    def sendNickname(self, nickname: str) -> Deferred[int]:
        """
        Ask for a nickname (RFC 7701 section 7.1; no report headers, R-081).

        @param nickname: The nickname (C{""} removes it, RFC 7701 7.3).
        @return: A L{Deferred} firing with 200 or failing with
            L{MSRPSendError} (423, 424, 425, 403, 408...).
        """
        unusable = self._usable()
        if unusable is not None:
            return fail(unusable)
        if len(nickname.encode("utf-8")) > 1023:
            return fail(MSRPSendError(424, "nickname longer than 1023 octets"))
        try:
            request = buildRequest(
                MSRPMethod.NICKNAME,
                self.remotePath,
                self.localPath,
                [("Use-Nickname", _quoteNickname(nickname))],
            )
        except ValueError as e:
            return fail(MSRPSendError(424, str(e)))
        d = self._start(
            None, 0, False, FailureReport.YES, lambda p: SingleRequest(request, p)
        )
        return d.addCallback(lambda result: result.code or 200)

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

    def _sendFailed(self, pending: _PendingSend, error: MSRPSendError) -> None:
        """
        An error response or failure REPORT ended a send; a 481 ends the
        session (R-148).
        """
        pending.fail(error)
        if error.code == 481:
            self._fail(failureOf(error))

    def _sendEnded(self, pending: _PendingSend) -> None:
        """
        Forget an ended send.
        """
        if pending in self._pending:
            self._pending.remove(pending)
        if pending.messageID is not None:
            if self._byMessageID.get(pending.messageID) is pending:
                del self._byMessageID[pending.messageID]

    # -- incoming ----------------------------------------------------------

    def requestReceived(self, connection: MSRPConnection, request: MSRPRequest) -> None:
        """
        Handle a request for this session.

        @param connection: The connection it came on.
        @param request: The request.
        """
        if not self.remotePath:
            self.remotePath = request.fromPath
        method = request.method
        if method == _SEND:
            self._sendReceived(connection, request)
        elif method == _REPORT:
            self._reportReceived(request)
        elif method == _NICKNAME:
            self._nicknameReceived(connection, request)
        else:
            connection.respond(request, 501)

    def _reportReceived(self, request: MSRPRequest) -> None:
        """
        Apply a REPORT to the pending send with its Message-ID; never answer
        it, ignore unknown ones (R-142).
        """
        try:
            messageID = request.messageID
            status = request.status
            byteRange = request.byteRange
        except MSRPParseError as e:
            self._log.warn(
                "Malformed REPORT for {msrpSessionID}: {error}",
                msrpSessionID=str(self.localURI),
                error=e,
            )
            return
        pending = None if messageID is None else self._byMessageID.get(messageID)
        if pending is None or status is None:
            self._log.debug(
                "REPORT for unknown message {messageID} in {msrpSessionID}",
                messageID=messageID,
                msrpSessionID=str(self.localURI),
            )
            return
        pending.reportReceived(status, byteRange)

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
