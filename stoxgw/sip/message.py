# -*- test-case-name: tests.sip.test_message -*-
"""
SIP requests and responses: building, serializing, parsing (RFC 3261
sections 7, 8.1.1, 8.2.6, 18.3, 20 and 25).

Messages are frozen dataclasses; upper layers build them with their
constructors, L{SIPRequest.makeResponse} and the C{with*} helpers, and send
L{SIPRequest.serialize} / L{SIPResponse.serialize}, which always writes a
correct Content-Length.

L{parseDatagram} parses one UDP datagram.  Stream transports use
L{stoxgw.sip.framing.SIPStreamParser}, built on L{parseHead} and
L{buildMessage}.  Both report problems as L{SIPParseError}, which carries
the status to answer with (400, 505, 513) and the header fields parsed so
far, so that the transport can send the error response
(L{SIPParseError.makeResponse}) or drop the message when no reply is
possible (responses, unparseable Via).

Pure, sans-IO, standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Self, Sequence, Union

from stoxgw.sip.headers import (
    ContactList,
    CSeq,
    HeaderError,
    HeaderField,
    Headers,
    MediaType,
    Via,
    parseAddress,
    parseCallID,
    parseContact,
    parseContentLength,
    parseMaxForwards,
    parseRoute,
    parseVia,
)
from stoxgw.sip.uri import URI, NameAddr, SIPURI, SIPURIError, parseURI

__all__ = [
    "SIP_VERSION",
    "REASON_PHRASES",
    "SIPParseError",
    "SIPRequest",
    "SIPResponse",
    "SIPMessage",
    "MessageHead",
    "parseDatagram",
    "parseHead",
    "buildMessage",
    "reasonPhrase",
]

SIP_VERSION = "SIP/2.0"

#: Default reason phrases (RFC 3261 section 21 and later RFCs).
REASON_PHRASES = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def reasonPhrase(status: int) -> str:
    """
    The default reason phrase for C{status} (or a generic one per class).
    """
    if status in REASON_PHRASES:
        return REASON_PHRASES[status]
    return {1: "Trying", 2: "OK", 3: "Redirect", 4: "Client Error"}.get(
        status // 100, "Server Error" if status < 600 else "Global Failure"
    )


#: Header fields a response copies from its request (RFC 3261 8.2.6.2),
#: and which an error report keeps so that one can be built.
_REPLY_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")

#: Header fields that may appear at most once.
_SINGLE_HEADERS = (
    "To",
    "From",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
)

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_VERSION_RE = re.compile(r"SIP/([0-9]+)\.([0-9]+)\Z", re.IGNORECASE)
_STATUS_RE = re.compile(r"SIP/([0-9]+\.[0-9]+) ([0-9]{3}) (.*)\Z", re.IGNORECASE | re.S)
_LINE_SPLIT_RE = re.compile(r"\r?\n")


class SIPParseError(ValueError):
    """
    A message (or what was taken for one) could not be accepted.

    @ivar status: The SIP status to answer a request with (400, 505, 513).
    @ivar reason: What is wrong, for logs and for the reason phrase.
    @ivar isRequest: C{True} for a request, C{False} for a response,
        L{None} when not even the start line could be told; only requests
        are ever answered.
    @ivar method: The request method if the request line was read.
    @ivar partialHeaders: The Via, From, To, Call-ID and CSeq fields that
        were read, as received, to build the error response.
    @ivar fatal: On a stream, whether framing is lost (the connection must
        be closed); always C{False} for L{parseDatagram}.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        isRequest: bool | None = None,
        method: str | None = None,
        partialHeaders: Headers = Headers(),
        fatal: bool = False,
    ) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.isRequest = isRequest
        self.method = method
        self.partialHeaders = partialHeaders
        self.fatal = fatal

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"SIPParseError({self.status}, {self.reason!r})"

    @property
    def canReply(self) -> bool:
        """
        Whether an error response can be built: a request other than ACK
        with Via (parseable), From, To, Call-ID and CSeq present.
        """
        if self.isRequest is not True or self.method == "ACK":
            return False
        headers = self.partialHeaders
        if not all(name in headers for name in _REPLY_HEADERS):
            return False
        try:
            for line in headers.getLines("Via"):
                parseVia(line)
        except HeaderError:
            return False
        return True

    def makeResponse(self, toTag: str | None = None) -> SIPResponse | None:
        """
        Build the error response (C{400 Bad Request (reason)} etc.), or
        L{None} if none can be sent (see L{canReply}).

        @param toTag: A tag to add to To if it has none (RFC 3261 8.2.6.2).
        """
        if not self.canReply:
            return None
        fields = []
        for f in self.partialHeaders:
            value = f.value
            if toTag is not None and f.canonicalName == "To" and not _hasTag(value):
                value = f"{value};tag={toTag}"
            fields.append(HeaderField(f.name, value))
        detail = "".join(c if " " <= c < "\x7f" else "?" for c in self.reason)
        return SIPResponse(
            status=self.status,
            reason=f"{reasonPhrase(self.status)} ({detail})",
            headers=Headers(tuple(fields)),
        )


def _hasTag(toValue: str) -> bool:
    try:
        return parseAddress(toValue).tag is not None
    except HeaderError:
        return ";tag=" in toValue.replace(" ", "").lower()


def _encodeText(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class _MessageMixin:
    """
    Header accessors shared by requests and responses.
    """

    __slots__ = ()

    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        """
        The first value of header C{name} (any case, compact or long form).
        """
        return self.headers.get(name)

    @property
    def callID(self) -> str:
        """
        The Call-ID.

        @raise HeaderError: Missing or invalid.
        """
        return parseCallID(self._required("Call-ID"))

    @property
    def cseq(self) -> CSeq:
        """
        The parsed CSeq.

        @raise HeaderError: Missing or invalid.
        """
        return CSeq.parse(self._required("CSeq"))

    @property
    def fromAddress(self) -> NameAddr:
        """
        The parsed From header.

        @raise HeaderError: Missing or invalid.
        """
        return parseAddress(self._required("From"))

    @property
    def toAddress(self) -> NameAddr:
        """
        The parsed To header.

        @raise HeaderError: Missing or invalid.
        """
        return parseAddress(self._required("To"))

    @property
    def vias(self) -> list[Via]:
        """
        Every Via element, topmost first.

        @raise HeaderError: Invalid.
        """
        result: list[Via] = []
        for line in self.headers.getLines("Via"):
            result.extend(parseVia(line))
        return result

    @property
    def topVia(self) -> Via:
        """
        The topmost Via.

        @raise HeaderError: Missing or invalid.
        """
        vias = self.vias
        if not vias:
            raise HeaderError("Missing Via", "")
        return vias[0]

    @property
    def contact(self) -> ContactList | None:
        """
        The parsed Contact header(s), or L{None} if absent.

        @raise HeaderError: Invalid.
        """
        lines = self.headers.getLines("Contact")
        return parseContact(lines) if lines else None

    @property
    def recordRoute(self) -> list[NameAddr]:
        """
        The Record-Route set, in message order.

        @raise HeaderError: Invalid.
        """
        return parseRoute(self.headers.getLines("Record-Route"))

    @property
    def route(self) -> list[NameAddr]:
        """
        The Route set, in message order.

        @raise HeaderError: Invalid.
        """
        return parseRoute(self.headers.getLines("Route"))

    @property
    def contentType(self) -> MediaType | None:
        """
        The parsed Content-Type, or L{None}.

        @raise HeaderError: Invalid.
        """
        value = self.headers.get("Content-Type")
        return MediaType.parse(value) if value is not None else None

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise HeaderError(f"Missing {name}", "")
        return value

    def withHeader(self, name: str, value: str) -> Self:
        """
        Return a copy where C{name} has exactly this one value.
        """
        return replace(self, headers=self.headers.set(name, value))  # type: ignore[type-var]

    def addHeader(self, name: str, value: str) -> Self:
        """
        Return a copy with one more C{name} field appended.
        """
        return replace(self, headers=self.headers.add(name, value))  # type: ignore[type-var]

    def withoutHeader(self, name: str) -> Self:
        """
        Return a copy without any C{name} field.
        """
        return replace(self, headers=self.headers.remove(name))  # type: ignore[type-var]

    def withBody(self, body: bytes, contentType: str | None = None) -> Self:
        """
        Return a copy with this body (and Content-Type, if given; removed
        when the body is empty and no type is given).
        """
        headers = self.headers
        if contentType is not None:
            headers = headers.set("Content-Type", contentType)
        elif not body:
            headers = headers.remove("Content-Type")
        return replace(self, headers=headers, body=body)  # type: ignore[type-var]

    def _serialize(self, startLine: str) -> bytes:
        headers = self.headers.set(self._contentLengthName(), str(len(self.body)))
        return (
            _encodeText(startLine + "\r\n" + headers.serialize() + "\r\n") + self.body
        )

    def _contentLengthName(self) -> str:
        for f in self.headers:
            if f.canonicalName == "Content-Length":
                return f.name
        return "Content-Length"


@dataclass(frozen=True, slots=True)
class SIPRequest(_MessageMixin):
    """
    A SIP request.

    @ivar method: The method, case-sensitive (C{INVITE}, C{MESSAGE}...).
    @ivar uri: The Request-URI.
    @ivar headers: Header fields in order.
    @ivar body: The body octets.
    @ivar version: The SIP-Version (only C{SIP/2.0} is ever parsed).
    """

    method: str
    uri: URI
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    def serialize(self) -> bytes:
        """
        The wire form, with Content-Length set to the body length.
        """
        return self._serialize(f"{self.method} {self.uri.serialize()} {self.version}")

    def makeResponse(
        self,
        status: int,
        reason: str | None = None,
        toTag: str | None = None,
        extraHeaders: Sequence[tuple[str, str]] = (),
    ) -> SIPResponse:
        """
        Build a response per RFC 3261 section 8.2.6: Via (all, in order),
        From, To, Call-ID and CSeq copied; To gets C{toTag} if it has no tag
        and the status is not 100; Timestamp copied into 100 (section
        8.2.6.1); Record-Route copied into 101-299 (section 12.1.1).

        @param extraHeaders: Fields appended after the copied ones.
        """
        copied: list[HeaderField] = []
        wanted = {"Via", "From", "To", "Call-ID", "CSeq"}
        if status == 100:
            wanted.add("Timestamp")
        if 101 <= status < 300:
            wanted.add("Record-Route")
        for f in self.headers:
            name = f.canonicalName
            if name not in wanted:
                continue
            value = f.value
            if (
                name == "To"
                and toTag is not None
                and status != 100
                and not _hasTag(value)
            ):
                value = f"{value};tag={toTag}"
            copied.append(HeaderField(f.name, value))
        headers = Headers(tuple(copied)).extend(extraHeaders)
        return SIPResponse(
            status=status,
            reason=reason if reason is not None else reasonPhrase(status),
            headers=headers,
        )


@dataclass(frozen=True, slots=True)
class SIPResponse(_MessageMixin):
    """
    A SIP response.

    @ivar status: The status code (100-699).
    @ivar reason: The reason phrase (may be empty).
    @ivar headers: Header fields in order.
    @ivar body: The body octets.
    @ivar version: The SIP-Version.
    """

    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    @property
    def method(self) -> str:
        """
        The method of the request this answers (from CSeq).

        @raise HeaderError: CSeq missing or invalid.
        """
        return self.cseq.method

    @property
    def isProvisional(self) -> bool:
        """
        Whether this is a 1xx response.
        """
        return self.status < 200

    @property
    def isSuccess(self) -> bool:
        """
        Whether this is a 2xx response.
        """
        return 200 <= self.status < 300

    def serialize(self) -> bytes:
        """
        The wire form, with Content-Length set to the body length.
        """
        return self._serialize(f"{self.version} {self.status} {self.reason}")


SIPMessage = Union[SIPRequest, SIPResponse]


@dataclass(frozen=True, slots=True)
class MessageHead:
    """
    A parsed start line and header section, before the body is known.

    @ivar isRequest: Request or response.
    @ivar method: Request method (requests).
    @ivar uri: Request-URI (requests).
    @ivar status: Status code (responses).
    @ivar reason: Reason phrase (responses).
    @ivar headers: The header fields.
    @ivar contentLength: The Content-Length value, or L{None} if absent.
    """

    isRequest: bool
    headers: Headers
    method: str = ""
    uri: URI | None = None
    status: int = 0
    reason: str = ""
    contentLength: int | None = None

    def error(self, status: int, reason: str, fatal: bool = False) -> SIPParseError:
        """
        A L{SIPParseError} about this message, with its reply headers.
        """
        return SIPParseError(
            status,
            reason,
            isRequest=self.isRequest,
            method=self.method or None,
            partialHeaders=_replyHeaders(self.headers),
            fatal=fatal,
        )


def _replyHeaders(headers: Headers) -> Headers:
    return Headers(tuple(f for f in headers if f.canonicalName in _REPLY_HEADERS))


def _parseStartLine(
    line: str, headers: Headers
) -> tuple[bool, str, URI | None, int, str]:
    """
    Parse the request-line or status-line.

    @return: (isRequest, method, uri, status, reason)
    @raise SIPParseError: Invalid.
    """
    partial = _replyHeaders(headers)
    if line[:4].upper() == "SIP/":
        match = _STATUS_RE.match(line)
        if match is None:
            raise SIPParseError(
                400, "Malformed Status-Line", isRequest=False, partialHeaders=partial
            )
        if match.group(1) != "2.0":
            raise SIPParseError(
                505, "Unsupported SIP version", isRequest=False, partialHeaders=partial
            )
        status = int(match.group(2))
        if not 100 <= status <= 699:
            raise SIPParseError(
                400, "Status code out of range", isRequest=False, partialHeaders=partial
            )
        return False, "", None, status, match.group(3)

    parts = line.split(" ")
    method = parts[0]
    if not _TOKEN_RE.match(method):
        raise SIPParseError(
            400, "Malformed Request-Line", isRequest=None, partialHeaders=partial
        )
    if len(parts) != 3 or not all(parts):
        raise SIPParseError(
            400,
            "Malformed Request-Line",
            isRequest=True,
            method=method,
            partialHeaders=partial,
        )
    uriText, version = parts[1], parts[2]
    versionMatch = _VERSION_RE.match(version)
    if versionMatch is None:
        raise SIPParseError(
            400,
            "Malformed SIP-Version",
            isRequest=True,
            method=method,
            partialHeaders=partial,
        )
    if versionMatch.groups() != ("2", "0"):
        raise SIPParseError(
            505,
            "Unsupported SIP version",
            isRequest=True,
            method=method,
            partialHeaders=partial,
        )
    if uriText.startswith("<"):
        raise SIPParseError(
            400,
            "Request-URI enclosed in <>",
            isRequest=True,
            method=method,
            partialHeaders=partial,
        )
    try:
        uri = parseURI(uriText)
    except SIPURIError as e:
        raise SIPParseError(
            400,
            f"Invalid Request-URI: {e.reason}",
            isRequest=True,
            method=method,
            partialHeaders=partial,
        ) from None
    if isinstance(uri, SIPURI) and uri.headers:
        # RFC 3261 section 19.1.1, Table 1: headers not allowed here.
        raise SIPParseError(
            400,
            "Headers in Request-URI",
            isRequest=True,
            method=method,
            partialHeaders=partial,
        )
    return True, method, uri, 0, ""


def parseHead(data: bytes) -> MessageHead:
    """
    Parse a start line and header section (without the empty line that
    ends it; leading CRLFs already removed).  Folded lines (LWS
    continuation, RFC 3261 section 7.3.1) are unfolded; CRLF and bare LF
    line ends are both accepted.

    @raise SIPParseError: The start line or a header line is malformed, a
        single-value header is repeated, or Content-Length is invalid.
    """
    text = data.decode("utf-8", "surrogateescape")
    lines = _LINE_SPLIT_RE.split(text)
    startLine = lines[0]
    fields: list[HeaderField] = []
    badLine = False
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            if not fields:
                badLine = True
                continue
            last = fields[-1]
            joined = (last.value + " " + line.strip(" \t")).strip(" \t")
            fields[-1] = HeaderField(last.name, joined)
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _TOKEN_RE.match(name):
            badLine = True
            continue
        fields.append(HeaderField(name, value.strip(" \t")))
    headers = Headers(tuple(fields))

    isRequest, method, uri, status, reason = _parseStartLine(startLine, headers)
    head = MessageHead(
        isRequest=isRequest,
        headers=headers,
        method=method,
        uri=uri,
        status=status,
        reason=reason,
    )
    if badLine:
        raise head.error(400, "Malformed header line")
    for name in _SINGLE_HEADERS:
        if headers.count(name) > 1:
            raise head.error(400, f"Multiple {name} header fields")
    lengthText = headers.get("Content-Length")
    if lengthText is not None:
        try:
            length = parseContentLength(lengthText)
        except HeaderError:
            raise head.error(400, "Invalid Content-Length", fatal=True) from None
        head = replace(head, contentLength=length)
    return head


def _validate(head: MessageHead, requireMaxForwards: bool) -> None:
    """
    Check the mandatory header fields (RFC 3261 section 8.1.1) and parse
    the ones the transaction and dialog layers rely on.

    @raise SIPParseError: A 400 condition.
    """
    headers = head.headers
    mandatory = ["To", "From", "Call-ID", "CSeq", "Via"]
    if head.isRequest and requireMaxForwards:
        mandatory.append("Max-Forwards")
    missing = [name for name in mandatory if name not in headers]
    if missing:
        raise head.error(400, "Missing " + ", ".join(missing))
    current = ""
    try:
        current = "Via"
        for line in headers.getLines("Via"):
            parseVia(line)
        current = "From"
        parseAddress(headers.get("From") or "")
        current = "To"
        parseAddress(headers.get("To") or "")
        current = "Call-ID"
        parseCallID(headers.get("Call-ID") or "")
        current = "CSeq"
        cseq = CSeq.parse(headers.get("CSeq") or "")
        current = "Max-Forwards"
        maxForwards = headers.get("Max-Forwards")
        if maxForwards is not None:
            parseMaxForwards(maxForwards)
        current = "Content-Type"
        contentType = headers.get("Content-Type")
        if contentType is not None:
            MediaType.parse(contentType)
        current = "Contact"
        contacts = headers.getLines("Contact")
        if contacts:
            parseContact(contacts)
        current = "Record-Route"
        parseRoute(headers.getLines("Record-Route"))
        current = "Route"
        parseRoute(headers.getLines("Route"))
    except SIPURIError as e:
        raise head.error(400, f"Invalid {current} header: {e.reason}") from None
    if head.isRequest and cseq.method != head.method:
        raise head.error(400, "CSeq method does not match Request-Line")


def buildMessage(
    head: MessageHead, body: bytes, requireMaxForwards: bool = True
) -> SIPMessage:
    """
    Validate a parsed head and combine it with its body.

    @param requireMaxForwards: Whether a request without Max-Forwards is an
        error (RFC 3261 section 8.1.1); C{False} accepts RFC 2543 peers
        (RFC 4475 section 3.4.1).
    @raise SIPParseError: A 400 condition.
    """
    _validate(head, requireMaxForwards)
    if head.isRequest:
        assert head.uri is not None
        return SIPRequest(
            method=head.method, uri=head.uri, headers=head.headers, body=body
        )
    return SIPResponse(
        status=head.status, reason=head.reason, headers=head.headers, body=body
    )


def _stripLeadingCRLF(data: bytes) -> bytes:
    index = 0
    while data[index : index + 2] == b"\r\n" or data[index : index + 1] == b"\n":
        index += 2 if data[index : index + 1] == b"\r" else 1
    return data[index:]


def parseDatagram(data: bytes, *, requireMaxForwards: bool = True) -> SIPMessage:
    """
    Parse one SIP message received in a datagram (RFC 3261 section 18.3).

    Content-Length is optional here: without it the body runs to the end
    of the datagram; with it, octets past it are ignored and a datagram
    shorter than it is an error.

    @raise SIPParseError: The message is malformed; see its C{status},
        C{canReply} and C{makeResponse}.
    """
    data = _stripLeadingCRLF(data)
    if not data.strip():
        raise SIPParseError(400, "Empty message")
    end = data.find(b"\r\n\r\n")
    if end != -1:
        headData, rest = data[:end], data[end + 4 :]
    else:
        end = data.find(b"\n\n")
        if end != -1:
            headData, rest = data[:end], data[end + 2 :]
        else:
            headData, rest = data, b""
    head = parseHead(headData)
    if head.contentLength is None:
        body = rest
    else:
        if head.contentLength > len(rest):
            raise head.error(400, "Content-Length larger than message")
        body = rest[: head.contentLength]
    return buildMessage(head, body, requireMaxForwards)
