# -*- test-case-name: tests.msrp.test_session,tests.msrp.test_protocol -*-
"""
The sending side of MSRP (RFC 4975 sections 7.1.1-7.1.4, RFC 7701 section
7.1): the half of an L{MSRPSession} that sends (the chunk sources it
queues on the connection are in L{stoxgw.msrp.chunks}).

L{Sending} (part of L{MSRPSession}): L{Sending.sendMessage} checks the
peer's C{accept-types} and C{max-size} (R-158, R-159), queues the message
on the connection (which cuts it into chunks), runs a transaction timer
per chunk from the moment it is written (R-137, on the injected clock),
waits for the success REPORT when one was asked for, and ends exactly
once: with a L{SendResult}, or with an L{MSRPSendError} for an error
response, a failure REPORT, a timeout (408), the loss of the connection or
the closing of the session.  The REPORTs the peer sends about our messages
(success and failure) are applied here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, cast

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from stoxgw._util import failureOf
from stoxgw.msrp.builders import buildRequest, generateMessageID
from stoxgw.msrp.chunks import ChunkedSend, SingleRequest
from stoxgw.msrp.incoming import mediaType
from stoxgw.msrp.message import (
    ByteRange,
    FailureReport,
    MSRPMethod,
    MSRPParseError,
    MSRPRequest,
    MSRPResponse,
    Status,
)
from stoxgw.msrp.reports import reasonPhrase
from stoxgw.msrp.uri import MSRPURI

if TYPE_CHECKING:  # pragma: no cover
    from stoxgw.msrp.interfaces import IMSRPConnectionUser
    from stoxgw.msrp.protocol import MSRPConnection

__all__ = [
    "DEFAULT_TRANSACTION_TIMEOUT",
    "LOCAL_FAILURE",
    "MSRPSendError",
    "SendResult",
    "Sending",
]


DEFAULT_TRANSACTION_TIMEOUT = 30.0
"""
Seconds to wait for a transaction response (RFC 4975 section 7.1.1, R-137).
"""

LOCAL_FAILURE = 0
"""
The L{MSRPSendError.code} of failures without an MSRP status: connection
lost, session closed, session not usable.
"""


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
        session: Sending,
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
        self.timers: dict[str, IDelayedCall] = {}
        self.transactionIDs: list[str] = []
        self.allWritten = False
        self.transactionsDone = False
        self.reportDone = not successReport
        self.reportTimer: IDelayedCall | None = None
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


class Sending:
    """
    The sending half of L{MSRPSession} (which sets the attributes declared
    here): sending messages, NICKNAME and keepalives, and the REPORTs the
    peer sends about them.
    """

    _log: Logger
    localURI: MSRPURI
    clock: IReactorTime
    connection: MSRPConnection | None
    remotePath: tuple[MSRPURI, ...]
    chunkSize: int
    transactionTimeout: float
    peerMaxSize: int | None

    def _initSending(self) -> None:
        """
        Start with nothing to send.
        """
        self._outbox: list[ChunkedSend | SingleRequest] = []
        self._pending: list[_PendingSend] = []
        self._byMessageID: dict[str, _PendingSend] = {}

    @property
    def localPath(self) -> tuple[MSRPURI, ...]:
        """
        Own path (L{MSRPSession}).
        """
        raise NotImplementedError()

    def peerAccepts(self, contentType: str, wrapped: bool = False) -> bool:
        """
        Whether the peer accepts a type (L{MSRPSession}).
        """
        raise NotImplementedError()

    def _usable(self) -> MSRPSendError | None:
        """
        Why nothing can be sent now, or L{None} (L{MSRPSession}).
        """
        raise NotImplementedError()

    def _fail(self, reason: Failure) -> None:
        """
        Fail the session (L{MSRPSession}).
        """
        raise NotImplementedError()

    @property
    def pendingSends(self) -> int:
        """
        How many sends have not ended yet.
        """
        return len(self._pending)

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
            self.connection.sendStream(cast("IMSRPConnectionUser", self), source)
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
                MSRPSendError(415, f"peer does not accept {mediaType(contentType)}")
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
