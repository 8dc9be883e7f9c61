# -*- test-case-name: tests.msrp.test_reports -*-
"""
Transaction responses and REPORT requests (RFC 4975 sections 7.1.2-7.1.4,
7.2; R-138, R-140-R-142).
"""

from __future__ import annotations

from typing import Iterable

from stoxgw.msrp.builders import buildRequest, buildResponse
from stoxgw.msrp.message import (
    ByteRange,
    MSRPMethod,
    MSRPParseError,
    MSRPRequest,
    MSRPResponse,
    Status,
)
from stoxgw.msrp.uri import MSRPURI

__all__ = [
    "REASON_PHRASES",
    "reasonPhrase",
    "responseTo",
    "responseToError",
    "buildReport",
    "reportFor",
]

REASON_PHRASES: dict[int, str] = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Failure to resolve recipient's URI",
    408: "Request Timeout",
    413: "Message Too Large",
    415: "Unsupported Media Type",
    423: "Parameter Out Of Bounds",
    424: "Malformed nickname",
    425: "Nickname reserved or already in use",
    428: "Private messages not supported",
    481: "Session Does Not Exist",
    501: "Method Not Understood",
    506: "Session Already Bound",
}
"""
Default comments for the status codes of RFC 4975 section 10 and RFC 7701
section 10.3 (comments are free text).
"""


def reasonPhrase(code: int) -> str | None:
    """
    The default comment for a status code.

    @param code: The status code.
    @return: The comment, or L{None} for an unknown code.
    """
    return REASON_PHRASES.get(code)


def _responsePath(
    method: str | None, fromPath: tuple[MSRPURI, ...]
) -> tuple[MSRPURI, ...]:
    """
    The To-Path of a response (RFC 4975 section 7.2).

    @param method: The request method.
    @param fromPath: The request's From-Path.
    @return: The first URI for SEND (previous hop only), the whole From-Path
        for other methods.
    """
    if method == MSRPMethod.SEND.value:
        return fromPath[:1]
    return fromPath


def responseTo(
    request: MSRPRequest,
    code: int,
    comment: str | None = None,
    fromURI: MSRPURI | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> MSRPResponse:
    """
    Build the response to a request (RFC 4975 section 7.2, R-138): same
    transaction id, To-Path = the first From-Path URI (SEND) or the whole
    From-Path (other methods), From-Path = own URI, flag C{$}.

    @param request: The request answered.
    @param code: The status code.
    @param comment: The comment; by default L{reasonPhrase}.
    @param fromURI: Own URI; by default the last To-Path URI of the request.
    @param headers: Further header fields.
    @return: The response.
    @raise ValueError: For a REPORT, which is never answered (R-142).
    """
    if request.method == MSRPMethod.REPORT.value:
        raise ValueError("REPORT requests are never answered")
    own = request.toPath[-1] if fromURI is None else fromURI
    return buildResponse(
        request.transactionID,
        code,
        reasonPhrase(code) if comment is None else comment,
        _responsePath(request.method, request.fromPath),
        (own,),
        headers,
    )


def responseToError(
    error: MSRPParseError, fromURI: MSRPURI | None = None
) -> MSRPResponse | None:
    """
    Build the error response for a rejected request, if it can be addressed.

    The Failure-Report rules (R-139) are the caller's: check
    C{error.failureReport} first.

    @param error: The parse error.
    @param fromURI: Own URI; by default the last URI of the error's To-Path.
    @return: The response, or L{None} if the error was not for a request
        (responses, unparsed start lines), was for a REPORT, or lacks the
        paths or the transaction id needed to address a response.
    """
    if (
        error.transactionID is None
        or error.method is None
        or error.method == MSRPMethod.REPORT.value
        or not error.fromPath
    ):
        return None
    if fromURI is None:
        if not error.toPath:
            return None
        fromURI = error.toPath[-1]
    return buildResponse(
        error.transactionID,
        error.code,
        reasonPhrase(error.code) or error.reason,
        _responsePath(error.method, error.fromPath),
        (fromURI,),
    )


def buildReport(
    toPath: tuple[MSRPURI, ...],
    fromPath: tuple[MSRPURI, ...],
    messageID: str,
    status: Status,
    byteRange: ByteRange | None,
    transactionID: str | None = None,
) -> MSRPRequest:
    """
    Build a REPORT request (RFC 4975 section 7.1.2, R-142): Message-ID,
    Byte-Range (if given), Status; no Success-Report or Failure-Report; no
    body.

    @param toPath: The original sender's path (the original From-Path).
    @param fromPath: Own path.
    @param messageID: The Message-ID of the reported message.
    @param status: The status (namespace 0 for MSRP codes).
    @param byteRange: The range reported on, or L{None}.
    @param transactionID: A transaction id to use instead of a fresh one.
    @return: The REPORT.
    """
    headers = [("Message-ID", messageID)]
    if byteRange is not None:
        headers.append(("Byte-Range", byteRange.serialize()))
    headers.append(("Status", status.serialize()))
    return buildRequest(
        MSRPMethod.REPORT,
        toPath,
        fromPath,
        headers,
        transactionID=transactionID,
    )


def reportFor(
    request: MSRPRequest,
    code: int = 200,
    comment: str | None = None,
    fromURI: MSRPURI | None = None,
    byteRange: ByteRange | None = None,
    transactionID: str | None = None,
) -> MSRPRequest:
    """
    Build a success (R-141) or failure (R-140) REPORT for one received SEND.

    To-Path is the SEND's whole From-Path, Status is C{000 code comment},
    Message-ID is copied.  By default Byte-Range covers what the chunk
    actually carried: start and total from the SEND's Byte-Range (1 and the
    body length without one), end computed from the body (RFC 4975 section
    7.1.4).

    @param request: The SEND reported on.
    @param code: The status code (200 for a success report).
    @param comment: The comment; by default L{reasonPhrase}.
    @param fromURI: Own URI; by default the last To-Path URI of the SEND.
    @param byteRange: The range to report instead of the default.
    @param transactionID: A transaction id to use instead of a fresh one.
    @return: The REPORT.
    @raise ValueError: If the request has no Message-ID.
    @raise MSRPParseError: If the request's Message-ID or Byte-Range is
        malformed.
    """
    messageID = request.messageID
    if messageID is None:
        raise ValueError("cannot report on a request without Message-ID")
    if byteRange is None:
        length = 0 if request.body is None else len(request.body)
        received = request.byteRange
        if received is None:
            byteRange = ByteRange(1, length, length)
        else:
            byteRange = ByteRange(
                received.start, received.start + length - 1, received.total
            )
    own = request.toPath[-1] if fromURI is None else fromURI
    status = Status(0, code, reasonPhrase(code) if comment is None else comment)
    return buildReport(
        request.fromPath, (own,), messageID, status, byteRange, transactionID
    )
