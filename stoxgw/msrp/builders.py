# -*- test-case-name: tests.msrp.test_message -*-
"""
New MSRP messages: canonical requests and responses, and fresh
identifiers (RFC 4975 sections 7.1, 7.2, 9).

L{buildRequest} and L{buildResponse} produce canonical messages (RFC 4975
section 7.1, R-127, R-129): To-Path first, From-Path second, Content-Type
last when there is a body, a blank line before the body and a CRLF before
the end-line.  Identifiers (transaction ids and Message-IDs) come from
L{secrets} (R-128).
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Iterable, Sequence

from stoxgw.msrp.message import (
    END_LINE_DASHES,
    MAX_NON_SEND_BODY,
    Continuation,
    MSRPHeader,
    MSRPMethod,
    MSRPRequest,
    MSRPResponse,
    isIdent,
)
from stoxgw.msrp.uri import MSRPURI, serializePath

__all__ = [
    "generateTransactionID",
    "generateMessageID",
    "endLineOccursIn",
    "pickTransactionID",
    "buildRequest",
    "buildResponse",
]

_METHOD_RE = re.compile(r"[A-Z]+\Z")
_HNAME_RE = re.compile(r"[A-Za-z][!#-'*+\-.0-9A-Z^-~]*\Z")
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MIME_HEADER_PREFIX = "content-"


def generateTransactionID() -> str:
    """
    Make a new transaction id (R-128): 16 lower-case base32 characters, i.e.
    80 bits from L{secrets}.

    @return: The id.
    """
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def generateMessageID() -> str:
    """
    Make a new Message-ID (RFC 4975 section 7.1.1, R-132): 24 lower-case
    base32 characters, i.e. 120 bits from L{secrets}.

    @return: The id.
    """
    return base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()


def endLineOccursIn(body: bytes, transactionID: str) -> bool:
    """
    Check whether a body contains the end-line of a transaction id (R-130).

    This is stricter than needed: it looks for the seven hyphens and the id
    whatever follows them.

    @param body: The body.
    @param transactionID: The transaction id.
    @return: Whether C{-------<transactionID>} occurs in C{body}.
    """
    return END_LINE_DASHES + transactionID.encode("ascii") in body


def pickTransactionID(body: bytes | None, transactionID: str | None = None) -> str:
    """
    Choose a transaction id whose end-line does not occur in C{body} (R-130),
    or verify a given one.

    @param body: The request body, or L{None}.
    @param transactionID: An id to verify instead of generating one.
    @return: A usable transaction id.
    @raise ValueError: If C{transactionID} is not an C{ident} or its end-line
        occurs in the body.
    """
    if transactionID is not None:
        if not isIdent(transactionID):
            raise ValueError(f"invalid transaction id {transactionID!r}")
        if body is not None and endLineOccursIn(body, transactionID):
            raise ValueError(f"end-line of {transactionID!r} occurs in the body")
        return transactionID
    while True:
        candidate = generateTransactionID()
        if body is None or not endLineOccursIn(body, candidate):
            return candidate


def _checkHeaders(headers: Iterable[tuple[str, str]]) -> list[MSRPHeader]:
    """
    Validate extra header fields for a builder.

    @param headers: C{(name, value)} pairs.
    @return: The header fields.
    @raise ValueError: If a name or value is invalid or a path header or
        Content-Type is given (the builders place those).
    """
    result = []
    for name, value in headers:
        if not _HNAME_RE.match(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in ("to-path", "from-path", "content-type"):
            raise ValueError(f"{name} is placed by the builder")
        if _BAD_VALUE_RE.search(value):
            raise ValueError(f"invalid characters in {name} value")
        result.append(MSRPHeader(name, value))
    return result


def buildRequest(
    method: str | MSRPMethod,
    toPath: Sequence[MSRPURI],
    fromPath: Sequence[MSRPURI],
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
    contentType: str | None = None,
    continuation: Continuation = Continuation.END,
    transactionID: str | None = None,
) -> MSRPRequest:
    """
    Build a canonical request (RFC 4975 section 7.1, R-127, R-129, R-130).

    Header order: To-Path, From-Path, C{headers}, then Content-Type if there
    is a body.

    @param method: The method.
    @param toPath: The To-Path URIs (at least one).
    @param fromPath: The From-Path URIs (at least one).
    @param headers: Further header fields in order, e.g. Message-ID and
        Byte-Range.
    @param body: The body, or L{None} for a bodiless request.
    @param contentType: The media type; required with a body, forbidden
        without.
    @param continuation: The end-line flag.
    @param transactionID: A transaction id to use; by default a fresh one
        whose end-line does not occur in the body.
    @return: The request.
    @raise ValueError: If the arguments violate RFC 4975.
    """
    methodName = method.value if isinstance(method, MSRPMethod) else method
    if not _METHOD_RE.match(methodName):
        raise ValueError(f"invalid method {methodName!r}")
    if not toPath or not fromPath:
        raise ValueError("To-Path and From-Path need at least one URI")
    extra = _checkHeaders(headers)
    if body is None:
        if contentType is not None:
            raise ValueError("a bodiless request has no Content-Type")
        if any(field.name.lower().startswith(_MIME_HEADER_PREFIX) for field in extra):
            raise ValueError("a bodiless request has no MIME headers")
    else:
        if contentType is None:
            raise ValueError("a request with a body needs a Content-Type")
        if _BAD_VALUE_RE.search(contentType):
            raise ValueError("invalid characters in Content-Type")
        if methodName != MSRPMethod.SEND.value and len(body) > MAX_NON_SEND_BODY:
            raise ValueError(
                f"non-SEND bodies are limited to {MAX_NON_SEND_BODY} octets"
            )
    tid = pickTransactionID(body, transactionID)
    to = tuple(toPath)
    frm = tuple(fromPath)
    fields = [
        MSRPHeader("To-Path", serializePath(to)),
        MSRPHeader("From-Path", serializePath(frm)),
        *extra,
    ]
    if contentType is not None:
        fields.append(MSRPHeader("Content-Type", contentType))
    return MSRPRequest(tid, methodName, to, frm, tuple(fields), body, continuation)


def buildResponse(
    transactionID: str,
    code: int,
    comment: str | None,
    toPath: Sequence[MSRPURI],
    fromPath: Sequence[MSRPURI],
    headers: Iterable[tuple[str, str]] = (),
) -> MSRPResponse:
    """
    Build a canonical response (RFC 4975 section 7.2): To-Path, From-Path,
    then C{headers}.

    @param transactionID: The transaction id of the request answered.
    @param code: The three-digit status code.
    @param comment: The comment, or L{None}.
    @param toPath: The To-Path URIs.
    @param fromPath: The From-Path URIs.
    @param headers: Further header fields in order.
    @return: The response.
    @raise ValueError: If the arguments violate RFC 4975.
    """
    if not isIdent(transactionID):
        raise ValueError(f"invalid transaction id {transactionID!r}")
    if not 100 <= code <= 999:
        raise ValueError(f"invalid status code {code!r}")
    if comment is not None and _BAD_VALUE_RE.search(comment):
        raise ValueError("invalid characters in comment")
    if not toPath or not fromPath:
        raise ValueError("To-Path and From-Path need at least one URI")
    to = tuple(toPath)
    frm = tuple(fromPath)
    fields = [
        MSRPHeader("To-Path", serializePath(to)),
        MSRPHeader("From-Path", serializePath(frm)),
        *_checkHeaders(headers),
    ]
    return MSRPResponse(transactionID, code, comment, to, frm, tuple(fields))
