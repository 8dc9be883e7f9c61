# -*- test-case-name: tests.msrp.test_message -*-
"""
MSRP requests and responses as immutable values (RFC 4975 sections 7 and 9).

A parsed message keeps every header field in wire order with the name's case
and the spacing after the colon as received, so that C{serialize()} gives
back exactly the bytes that were parsed.  L{stoxgw.msrp.builders} makes
new, canonical messages and their identifiers.

Typed accessors cover the headers of RFC 4975 (Message-ID, Byte-Range,
Success-Report, Failure-Report, Status, Content-Type), RFC 7701
(Use-Nickname) and RFC 4976 (Use-Path, WWW-Authenticate, Authorization,
Authentication-Info, Expires).  They return L{None} for an absent header and
raise L{MSRPParseError} (status 400, or 424 for a malformed nickname) for a
malformed one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any, Callable, Sequence, Union

from stoxgw.msrp.uri import MSRPURI, MSRPURIError, parsePath

__all__ = [
    "END_LINE_DASHES",
    "MAX_NON_SEND_BODY",
    "Continuation",
    "MSRPMethod",
    "SuccessReport",
    "FailureReport",
    "MSRPHeader",
    "ByteRange",
    "Status",
    "AuthParameters",
    "MSRPParseError",
    "MSRPRequest",
    "MSRPResponse",
    "MSRPMessage",
    "isIdent",
    "parseAuthParameters",
]

END_LINE_DASHES = b"-------"
"""
The seven hyphens that start an end-line (RFC 4975 section 9).
"""

MAX_NON_SEND_BODY = 10240
"""
The largest body a non-SEND request may carry (RFC 4975 section 7.1, R-131).
"""

_IDENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}\Z")
_BYTE_RANGE_RE = re.compile(r"([0-9]+)-([0-9]+|\*)/([0-9]+|\*)\Z")
_STATUS_RE = re.compile(r"([0-9]{3}) ([0-9]{3})(?: (.*))?\Z", re.S)
_NICKNAME_RE = re.compile(r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\["\\])*)"\Z')
_UNESCAPE_RE = re.compile(r"\\(.)", re.S)
_TOKEN = r"[!#-'*+\-.0-9A-Z^-~]+"
_AUTH_SCHEME_RE = re.compile(rf"\s*({_TOKEN})(?:\s+|\Z)")
_AUTH_PARAM_RE = re.compile(
    rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))\s*(?:,|\Z)', re.S
)


class Continuation(Enum):
    """
    The continuation flag that ends an end-line (RFC 4975 section 7.1).

    @cvar END: C{$}: this chunk ends the message (always used by responses).
    @cvar MORE: C{+}: more chunks of this message follow.
    @cvar ABORT: C{#}: the sender abandons the message.
    """

    END = "$"
    MORE = "+"
    ABORT = "#"


class MSRPMethod(StrEnum):
    """
    Request methods this implementation knows (a L{StrEnum}: a member
    equals its name as a string, so tables keyed by it, such as the
    interworking error table, take either).

    Requests carry the method as a string: extension methods still parse
    (the protocol layer answers them with 501, RFC 4975 section 12).

    @cvar SEND: RFC 4975.
    @cvar REPORT: RFC 4975.
    @cvar NICKNAME: RFC 7701 section 7.
    @cvar AUTH: RFC 4976 (relays).
    """

    SEND = "SEND"
    REPORT = "REPORT"
    NICKNAME = "NICKNAME"
    AUTH = "AUTH"


_METHODS = {method.value: method for method in MSRPMethod}


class SuccessReport(Enum):
    """
    Values of the Success-Report header (absent means C{NO}, R-133).
    """

    YES = "yes"
    NO = "no"


class FailureReport(Enum):
    """
    Values of the Failure-Report header (absent means C{YES}, R-133).
    """

    YES = "yes"
    NO = "no"
    PARTIAL = "partial"


@dataclass(frozen=True, slots=True)
class MSRPHeader:
    """
    One header field as it appears on the wire.

    @ivar name: The field name with its case as received.
    @ivar value: The field value (UTF-8 text, no CR or LF).
    @ivar spacing: The whitespace between the colon and the value; RFC 4975
        requires exactly one SP, but what was received is kept so the message
        re-serializes byte for byte.
    """

    name: str
    value: str
    spacing: str = " "

    def serialize(self) -> str:
        """
        Serialize the header field (without the trailing CRLF).

        @return: C{name ":" spacing value}.
        """
        return f"{self.name}:{self.spacing}{self.value}"


@dataclass(frozen=True, slots=True)
class ByteRange:
    """
    A Byte-Range header value (RFC 4975 section 7.1.1, R-134).

    @ivar start: The 1-based position of the first byte of the chunk.
    @ivar end: The position of the last byte, or L{None} for C{*}.
    @ivar total: The size of the whole message, or L{None} for C{*}.
    """

    start: int
    end: int | None
    total: int | None

    @classmethod
    def fromString(cls, text: str) -> ByteRange:
        """
        Parse C{range-start "-" range-end "/" total}.

        @param text: The header value, e.g. C{"1-*/8"}.
        @return: The parsed range.
        @raise ValueError: If the value is malformed or inconsistent.
        """
        match = _BYTE_RANGE_RE.match(text)
        if match is None:
            raise ValueError(f"malformed Byte-Range {text!r}")
        start = int(match.group(1))
        endText, totalText = match.group(2), match.group(3)
        end = None if endText == "*" else int(endText)
        total = None if totalText == "*" else int(totalText)
        if start < 1:
            raise ValueError(f"Byte-Range start must be at least 1: {text!r}")
        if end is not None and end < start - 1:
            raise ValueError(f"Byte-Range end before start: {text!r}")
        if total is not None and end is not None and end > total:
            raise ValueError(f"Byte-Range end beyond total: {text!r}")
        return cls(start, end, total)

    def serialize(self) -> str:
        """
        Serialize the range.

        @return: E.g. C{"1-25/25"} or C{"1-*/*"}.
        """
        end = "*" if self.end is None else str(self.end)
        total = "*" if self.total is None else str(self.total)
        return f"{self.start}-{end}/{total}"


@dataclass(frozen=True, slots=True)
class Status:
    """
    A Status header value of a REPORT (RFC 4975 sections 7.1.2, 9).

    @ivar namespace: The namespace; 0 (C{"000"}) means the code is an MSRP
        transaction response code.
    @ivar code: The status code.
    @ivar comment: The comment, or L{None}.
    """

    namespace: int
    code: int
    comment: str | None = None

    @classmethod
    def fromString(cls, text: str) -> Status:
        """
        Parse C{namespace SP status-code [SP comment]}.

        @param text: The header value, e.g. C{"000 200 OK"}.
        @return: The parsed status.
        @raise ValueError: If the value is malformed.
        """
        match = _STATUS_RE.match(text)
        if match is None:
            raise ValueError(f"malformed Status {text!r}")
        return cls(int(match.group(1)), int(match.group(2)), match.group(3))

    def serialize(self) -> str:
        """
        Serialize the status.

        @return: E.g. C{"000 200 OK"}.
        """
        text = f"{self.namespace:03d} {self.code:03d}"
        if self.comment is not None:
            text += " " + self.comment
        return text


@dataclass(frozen=True, slots=True)
class AuthParameters:
    """
    A parsed digest parameter list (RFC 4976 WWW-Authenticate, Authorization,
    Authentication-Info).

    @ivar scheme: The authentication scheme (e.g. C{"Digest"}), or L{None}
        for Authentication-Info which has none.
    @ivar parameters: C{(name, value)} pairs in order, quoted-string values
        unquoted and unescaped.
    """

    scheme: str | None
    parameters: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        """
        Look up a parameter case-insensitively.

        @param name: The parameter name, e.g. C{"nonce"}.
        @return: The first value with that name, or L{None}.
        """
        lowered = name.lower()
        for key, value in self.parameters:
            if key.lower() == lowered:
                return value
        return None


def parseAuthParameters(value: str, hasScheme: bool = True) -> AuthParameters:
    """
    Parse C{[scheme SP] name=value *("," name=value)} where each value is a
    token or a quoted-string (RFC 4976 section 9 digest parameter lists).

    @param value: The header value.
    @param hasScheme: Whether the value starts with a scheme token
        (WWW-Authenticate, Authorization) or not (Authentication-Info).
    @return: The parsed parameters.
    @raise ValueError: If the value is malformed.
    """
    position = 0
    scheme: str | None = None
    if hasScheme:
        match = _AUTH_SCHEME_RE.match(value)
        if match is None:
            raise ValueError(f"missing authentication scheme in {value!r}")
        scheme = match.group(1)
        position = match.end()
    parameters: list[tuple[str, str]] = []
    while position < len(value):
        match = _AUTH_PARAM_RE.match(value, position)
        if match is None or match.end() == position:
            raise ValueError(f"malformed parameter list {value!r}")
        quoted, token = match.group(2), match.group(3)
        if quoted is not None:
            parameters.append((match.group(1), _UNESCAPE_RE.sub(r"\1", quoted)))
        else:
            parameters.append((match.group(1), token))
        position = match.end()
    if not parameters and not hasScheme:
        raise ValueError(f"empty parameter list {value!r}")
    return AuthParameters(scheme, tuple(parameters))


class _HeaderAccess:
    """
    Typed header accessors shared by requests, responses and parse errors.

    Subclasses provide C{headers} and C{transactionID}.
    """

    __slots__ = ()

    headers: tuple[MSRPHeader, ...]
    transactionID: str | None

    def header(self, name: str) -> str | None:
        """
        Look up a header value case-insensitively.

        @param name: The header name.
        @return: The value of the first field with that name, or L{None}.
        """
        lowered = name.lower()
        for field in self.headers:
            if field.name.lower() == lowered:
                return field.value
        return None

    def headerValues(self, name: str) -> list[str]:
        """
        Look up all values of a header case-insensitively.

        @param name: The header name.
        @return: The values in wire order.
        """
        lowered = name.lower()
        return [field.value for field in self.headers if field.name.lower() == lowered]

    def _invalid(self, reason: str, code: int = 400) -> MSRPParseError:
        """
        Make the error for a malformed header of this message.

        @param reason: What is wrong.
        @param code: The MSRP status code to answer with.
        @return: The error, addressed like this message.
        """
        return MSRPParseError(
            code,
            reason,
            transactionID=self.transactionID,
            method=getattr(self, "method", None),
            toPath=getattr(self, "toPath", None),
            fromPath=getattr(self, "fromPath", None),
            headers=self.headers,
        )

    @property
    def messageID(self) -> str | None:
        """
        The Message-ID (RFC 4975 section 7.1.1).

        @raise MSRPParseError: (400) If it is not an C{ident}.
        """
        value = self.header("Message-ID")
        if value is not None and not isIdent(value):
            raise self._invalid(f"malformed Message-ID {value!r}")
        return value

    @property
    def byteRange(self) -> ByteRange | None:
        """
        The Byte-Range (RFC 4975 section 7.1.1).

        @raise MSRPParseError: (400) If it is malformed.
        """
        value = self.header("Byte-Range")
        if value is None:
            return None
        try:
            return ByteRange.fromString(value)
        except ValueError as e:
            raise self._invalid(str(e)) from None

    @property
    def successReport(self) -> SuccessReport | None:
        """
        The Success-Report value; L{None} when absent (which means C{NO}).

        @raise MSRPParseError: (400) If the value is not C{yes} or C{no}.
        """
        value = self.header("Success-Report")
        if value is None:
            return None
        try:
            return SuccessReport(value)
        except ValueError:
            raise self._invalid(f"malformed Success-Report {value!r}") from None

    @property
    def failureReport(self) -> FailureReport | None:
        """
        The Failure-Report value; L{None} when absent (which means C{YES}).

        @raise MSRPParseError: (400) If the value is not C{yes}, C{no} or
            C{partial}.
        """
        value = self.header("Failure-Report")
        if value is None:
            return None
        try:
            return FailureReport(value)
        except ValueError:
            raise self._invalid(f"malformed Failure-Report {value!r}") from None

    @property
    def wantsSuccessReport(self) -> bool:
        """
        Whether success REPORTs are requested (absent means no, R-133).
        """
        return self.successReport is SuccessReport.YES

    @property
    def effectiveFailureReport(self) -> FailureReport:
        """
        The Failure-Report value with the default applied (absent means yes,
        R-133).
        """
        value = self.failureReport
        return FailureReport.YES if value is None else value

    @property
    def status(self) -> Status | None:
        """
        The Status of a REPORT (RFC 4975 section 7.1.2).

        @raise MSRPParseError: (400) If it is malformed.
        """
        value = self.header("Status")
        if value is None:
            return None
        try:
            return Status.fromString(value)
        except ValueError as e:
            raise self._invalid(str(e)) from None

    @property
    def contentType(self) -> str | None:
        """
        The Content-Type media type as written, or L{None}.
        """
        return self.header("Content-Type")

    @property
    def useNickname(self) -> str | None:
        """
        The nickname of a NICKNAME request (RFC 7701 section 7.1), unquoted
        and unescaped; C{""} asks to remove the nickname (RFC 7701 7.3).

        @raise MSRPParseError: (424) If the value is not a quoted string of
            at most 1023 octets.
        """
        value = self.header("Use-Nickname")
        if value is None:
            return None
        match = _NICKNAME_RE.match(value)
        if match is None:
            raise self._invalid(f"malformed Use-Nickname {value!r}", 424)
        nickname = _UNESCAPE_RE.sub(r"\1", match.group(1))
        if len(nickname.encode("utf-8")) > 1023:
            raise self._invalid("nickname longer than 1023 octets", 424)
        return nickname

    @property
    def usePath(self) -> tuple[MSRPURI, ...] | None:
        """
        The Use-Path URIs (RFC 4976), leftmost first.

        @raise MSRPParseError: (400) If a URI is invalid.
        """
        value = self.header("Use-Path")
        if value is None:
            return None
        try:
            return parsePath(value)
        except MSRPURIError as e:
            raise self._invalid(f"malformed Use-Path: {e}") from None

    @property
    def wwwAuthenticate(self) -> list[AuthParameters]:
        """
        All WWW-Authenticate challenges (RFC 4976), parsed.

        @raise MSRPParseError: (400) If one is malformed.
        """
        return self._authValues("WWW-Authenticate", True)

    @property
    def authorization(self) -> AuthParameters | None:
        """
        The Authorization credentials (RFC 4976), parsed.

        @raise MSRPParseError: (400) If they are malformed.
        """
        values = self._authValues("Authorization", True)
        return values[0] if values else None

    @property
    def authenticationInfo(self) -> AuthParameters | None:
        """
        The Authentication-Info parameters (RFC 4976), parsed.

        @raise MSRPParseError: (400) If they are malformed.
        """
        values = self._authValues("Authentication-Info", False)
        return values[0] if values else None

    def _authValues(self, name: str, hasScheme: bool) -> list[AuthParameters]:
        """
        Parse all values of a digest header.

        @param name: The header name.
        @param hasScheme: Whether the values start with a scheme.
        @return: The parsed values.
        @raise MSRPParseError: (400) If a value is malformed.
        """
        try:
            return [
                parseAuthParameters(value, hasScheme)
                for value in self.headerValues(name)
            ]
        except ValueError as e:
            raise self._invalid(f"malformed {name}: {e}") from None

    @property
    def expires(self) -> int | None:
        """
        The Expires value in seconds (RFC 4976).

        @raise MSRPParseError: (400) If it is not a number.
        """
        value = self.header("Expires")
        if value is None:
            return None
        if not value.isascii() or not value.isdigit() or len(value) > 20:
            raise self._invalid(f"malformed Expires {value!r}")
        return int(value)


class MSRPParseError(_HeaderAccess, Exception):
    """
    A message (or part of the byte stream) could not be accepted.

    Raised by the typed accessors and by L{stoxgw.msrp.parser.parseMessage};
    returned as an event by L{stoxgw.msrp.parser.MSRPParser.feed}.  It
    carries what is needed to address an error response.

    @ivar code: The MSRP status code to answer with (400, 413, 424...).
    @ivar reason: A human-readable explanation.
    @ivar fatal: C{True} if the byte stream cannot be framed any more and the
        connection must be closed.
    @ivar transactionID: The transaction id, if it was parsed.
    @ivar method: The request method, if the message was a request whose
        start line was parsed; L{None} for a response or an unparsed start
        line.
    @ivar toPath: The To-Path URIs, if they were parsed.
    @ivar fromPath: The From-Path URIs, if they were parsed.
    @ivar headers: The header fields that were parsed.
    """

    def __init__(
        self,
        code: int,
        reason: str,
        *,
        fatal: bool = False,
        transactionID: str | None = None,
        method: str | None = None,
        toPath: tuple[MSRPURI, ...] | None = None,
        fromPath: tuple[MSRPURI, ...] | None = None,
        headers: tuple[MSRPHeader, ...] = (),
    ) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
        self.fatal = fatal
        self.transactionID = transactionID
        self.method = method
        self.toPath = toPath
        self.fromPath = fromPath
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.code} {self.reason}"

    def __repr__(self) -> str:
        return (
            f"MSRPParseError({self.code!r}, {self.reason!r}, fatal={self.fatal!r},"
            f" transactionID={self.transactionID!r}, method={self.method!r})"
        )


def _serializeHeaders(parts: list[bytes], headers: Sequence[MSRPHeader]) -> None:
    """
    Append serialized header lines.

    @param parts: The output list.
    @param headers: The header fields.
    """
    for field in headers:
        parts.append(f"{field.name}:{field.spacing}{field.value}\r\n".encode("utf-8"))


@dataclass(frozen=True, slots=True)
class MSRPRequest(_HeaderAccess):
    """
    An MSRP request (RFC 4975 section 7.1), e.g. one chunk of a SEND.

    Invariant: C{headers} holds every header field in wire order, including
    the To-Path and From-Path fields that C{toPath} and C{fromPath} are the
    parsed forms of.  Use L{stoxgw.msrp.builders.buildRequest} to make new
    requests.

    @ivar transactionID: The transaction id (an C{ident}).
    @ivar method: The method name (upper case; may be an unknown extension).
    @ivar toPath: The To-Path URIs, leftmost first.
    @ivar fromPath: The From-Path URIs, leftmost first.
    @ivar headers: All header fields in wire order.
    @ivar body: The body; L{None} for a bodiless request, C{b""} for an empty
        body (RFC 4975 section 7.1 tells them apart).
    @ivar continuation: The end-line flag.
    """

    transactionID: str
    method: str
    toPath: tuple[MSRPURI, ...]
    fromPath: tuple[MSRPURI, ...]
    headers: tuple[MSRPHeader, ...]
    body: bytes | None = None
    continuation: Continuation = Continuation.END

    @property
    def knownMethod(self) -> MSRPMethod | None:
        """
        The method as an L{MSRPMethod}, or L{None} if it is an extension this
        implementation does not know (answer 501).
        """
        return _METHODS.get(self.method)

    @property
    def endLine(self) -> bytes:
        """
        The end-line of this request, including its CRLF.
        """
        return (
            END_LINE_DASHES
            + self.transactionID.encode("ascii")
            + self.continuation.value.encode("ascii")
            + b"\r\n"
        )

    def serialize(self) -> bytes:
        """
        Serialize the request.

        @return: The wire bytes.
        """
        tid = self.transactionID.encode("ascii")
        parts = [b"MSRP ", tid, b" ", self.method.encode("ascii"), b"\r\n"]
        _serializeHeaders(parts, self.headers)
        if self.body is not None:
            parts += [b"\r\n", self.body, b"\r\n"]
        flag = self.continuation.value.encode("ascii")
        parts += [END_LINE_DASHES, tid, flag, b"\r\n"]
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class MSRPResponse(_HeaderAccess):
    """
    An MSRP transaction response (RFC 4975 section 7.2).  Responses have no
    body and always end with C{$}.

    Invariant: C{headers} holds every header field in wire order, including
    To-Path and From-Path.  Use L{stoxgw.msrp.builders.buildResponse} or
    L{stoxgw.msrp.reports.responseTo} to make new responses.

    @ivar transactionID: The transaction id of the request answered.
    @ivar code: The status code.
    @ivar comment: The comment after the code, or L{None}.
    @ivar toPath: The To-Path URIs.
    @ivar fromPath: The From-Path URIs.
    @ivar headers: All header fields in wire order.
    """

    transactionID: str
    code: int
    comment: str | None
    toPath: tuple[MSRPURI, ...]
    fromPath: tuple[MSRPURI, ...]
    headers: tuple[MSRPHeader, ...]

    def serialize(self) -> bytes:
        """
        Serialize the response.

        @return: The wire bytes.
        """
        tid = self.transactionID.encode("ascii")
        start = f"{self.code:03d}"
        if self.comment is not None:
            start += " " + self.comment
        parts = [b"MSRP ", tid, b" ", start.encode("utf-8"), b"\r\n"]
        _serializeHeaders(parts, self.headers)
        parts += [END_LINE_DASHES, tid, b"$\r\n"]
        return b"".join(parts)


MSRPMessage = Union[MSRPRequest, MSRPResponse]
"""
Either kind of MSRP message.
"""


# Private constructors for the receive path: the same objects the dataclass
# constructors make (they stay frozen), without the generated __init__'s
# object.__setattr__ call per field.  Only for values already validated.
_new = object.__new__


def _slotSetter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """
    The setter of a slot, bypassing the frozen dataclass's C{__setattr__}.
    """
    setter: Callable[[Any, Any], None] = vars(cls)[name].__set__
    return setter


_setHeaderName = _slotSetter(MSRPHeader, "name")
_setHeaderValue = _slotSetter(MSRPHeader, "value")
_setHeaderSpacing = _slotSetter(MSRPHeader, "spacing")
_setTransactionID = _slotSetter(MSRPRequest, "transactionID")
_setMethod = _slotSetter(MSRPRequest, "method")
_setToPath = _slotSetter(MSRPRequest, "toPath")
_setFromPath = _slotSetter(MSRPRequest, "fromPath")
_setHeaders = _slotSetter(MSRPRequest, "headers")
_setBody = _slotSetter(MSRPRequest, "body")
_setContinuation = _slotSetter(MSRPRequest, "continuation")


def _newHeader(name: str, value: str, spacing: str) -> MSRPHeader:
    """
    Make C{MSRPHeader(name, value, spacing)} quickly.
    """
    field: MSRPHeader = _new(MSRPHeader)
    _setHeaderName(field, name)
    _setHeaderValue(field, value)
    _setHeaderSpacing(field, spacing)
    return field


def _newRequest(
    transactionID: str,
    method: str,
    toPath: tuple[MSRPURI, ...],
    fromPath: tuple[MSRPURI, ...],
    headers: tuple[MSRPHeader, ...],
    body: bytes | None,
    continuation: Continuation,
) -> MSRPRequest:
    """
    Make C{MSRPRequest(...)} with all fields given, quickly.
    """
    request: MSRPRequest = _new(MSRPRequest)
    _setTransactionID(request, transactionID)
    _setMethod(request, method)
    _setToPath(request, toPath)
    _setFromPath(request, fromPath)
    _setHeaders(request, headers)
    _setBody(request, body)
    _setContinuation(request, continuation)
    return request


def isIdent(text: str) -> bool:
    """
    Check the C{ident} syntax of transaction ids and Message-IDs (RFC 4975
    section 9): ALPHANUM then 3 to 31 of ALPHANUM C{. - + % =}.

    @param text: The candidate.
    @return: Whether it matches.
    """
    return _IDENT_RE.match(text) is not None
