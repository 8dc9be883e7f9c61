# -*- test-case-name: tests.sip.test_headers -*-
"""
SIP header fields: names, the ordered header collection of a message, and
parsed forms of the header fields the UA core uses.

Header names are case-insensitive and have compact forms (RFC 3261 section
7.3.3, plus the IANA-registered compact forms of later RFCs, see
L{COMPACT_FORMS}).  L{Headers} keeps every field as received (name as
written, value unfolded) and looks them up by canonical name.

Parsed forms are frozen dataclasses with a C{parse} class method (raising
L{HeaderError}, a 400 condition) and a C{serialize} method.

Pure, sans-IO, standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, Sequence, Union

from stoxgw.formats.hostport import HostPortError, checkHost
from stoxgw.sip.uri import (
    NameAddr,
    Parameter,
    SIPURIError,
    _HOST_REASONS,
    _HOSTNAME_RE,
    _formatParameters,
    _hasParameter,
    _lowerOrNone,
    _number,
    _paramValue,
    _readGenericParams,
    _readQuoted,
    _Scanner,
    _unquotedParameter,
    _withoutParameter,
    parseNameAddr,
    parseNameAddrList,
    unquoteString,
)

__all__ = [
    "HeaderError",
    "COMPACT_FORMS",
    "canonicalName",
    "splitHeaderValues",
    "HeaderField",
    "Headers",
    "Via",
    "CSeq",
    "ContactList",
    "MediaType",
    "Event",
    "SubscriptionState",
    "Reason",
    "SessionExpires",
    "AuthHeader",
    "parseVia",
    "parseContact",
    "parseRoute",
    "parseTokenList",
    "parseContentLength",
    "parseMaxForwards",
    "parseExpires",
    "parseCallID",
    "parseReasons",
    "parseMinSE",
    "parseNameAddr",
]


class HeaderError(SIPURIError):
    """
    A header field value is malformed; a request carrying it deserves
    C{400 Bad Request} (L{status}).
    """

    status = 400


#: Compact forms: RFC 3261 section 7.3.3 (c, e, f, i, k, l, m, s, t, v)
#: and the IANA "Header Fields" registry entries of later RFCs: a, j, d
#: (RFC 3841), b (RFC 3892), n, y (RFC 4474/8224), o, u (RFC 6665, was
#: RFC 3265), r (RFC 3515), x (RFC 4028).
COMPACT_FORMS = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_KNOWN_NAMES = [
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "Path",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Session-Expires",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
]
_CANONICAL = {name.lower(): name for name in _KNOWN_NAMES}
_CANONICAL.update({short: long for short, long in COMPACT_FORMS.items()})

#: Header fields whose value may contain unquoted commas, so they are never
#: split into list elements (RFC 3261 section 7.3.1), plus the single-value
#: fields whose grammar has no list form.
NOT_SPLITTABLE = frozenset(
    name.lower()
    for name in [
        "WWW-Authenticate",
        "Authorization",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Authentication-Info",
        "Date",
        "Retry-After",
        "Subject",
        "Organization",
        "Server",
        "User-Agent",
        "Call-ID",
        "CSeq",
        "Content-Length",
        "Content-Type",
        "From",
        "To",
        "Max-Forwards",
        "Expires",
        "Min-Expires",
        "Timestamp",
        "Refer-To",
        "Referred-By",
        "Subscription-State",
        "Identity",
        "Identity-Info",
        "Session-Expires",
        "Event",
        "Priority",
        "MIME-Version",
        "Content-Disposition",
        "RSeq",
        "RAck",
        "SIP-ETag",
        "SIP-If-Match",
    ]
)

_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")


def canonicalName(name: str) -> str:
    """
    The canonical spelling of a header name: compact forms expanded, known
    names in their RFC capitalization (C{"cseq"} -> C{"CSeq"}, C{"i"} ->
    C{"Call-ID"}), unknown names returned unchanged.
    """
    return _CANONICAL.get(name.lower(), name)


def _key(name: str) -> str:
    return canonicalName(name).lower()


def splitHeaderValues(value: str) -> list[str]:
    """
    Split a comma-separated header value into its elements, ignoring commas
    inside quoted strings and angle brackets.  Empty elements are dropped;
    surrounding whitespace is stripped.
    """
    if "," not in value:
        stripped = value.strip(" \t")
        return [stripped] if stripped else []
    items = []
    start = 0
    depth = 0
    index = 0
    length = len(value)
    while index < length:
        char = value[index]
        if char == '"':
            try:
                _, index = _readQuoted(value, index)
            except SIPURIError:
                index = length
            continue
        if char == "<":
            depth += 1
        elif char == ">" and depth:
            depth -= 1
        elif char == "," and not depth:
            items.append(value[start:index])
            start = index + 1
        index += 1
    items.append(value[start:])
    return [item.strip(" \t") for item in items if item.strip(" \t")]


@dataclass(frozen=True, slots=True)
class HeaderField:
    """
    One header field line as received (or to be sent).

    @ivar name: The name as written (compact or not).
    @ivar value: The value, unfolded, without leading/trailing whitespace.
    """

    name: str
    value: str

    @property
    def canonicalName(self) -> str:
        """
        L{canonicalName} of L{name}.
        """
        return canonicalName(self.name)


@dataclass(frozen=True, slots=True)
class Headers:
    """
    The ordered header fields of a SIP message.

    Immutable: the C{with*} methods return new collections.  Lookups are by
    canonical name, so C{get("i")}, C{get("call-id")} and C{get("Call-ID")}
    find the same field; output keeps each name as it was added.

    @ivar fields: The header fields in message order.
    """

    fields: tuple[HeaderField, ...] = ()

    @classmethod
    def of(cls, *pairs: tuple[str, str]) -> Headers:
        """
        Build from C{(name, value)} pairs.
        """
        return cls(tuple(HeaderField(name, value) for name, value in pairs))

    def __iter__(self) -> Iterator[HeaderField]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        return any(_key(f.name) == key for f in self.fields)

    def get(self, name: str) -> str | None:
        """
        The value of the first field called C{name}, or L{None}.
        """
        key = _key(name)
        for f in self.fields:
            if _key(f.name) == key:
                return f.value
        return None

    def getLines(self, name: str) -> list[str]:
        """
        The values of every field called C{name}, one per header line,
        unsplit.
        """
        key = _key(name)
        return [f.value for f in self.fields if _key(f.name) == key]

    def getAll(self, name: str) -> list[str]:
        """
        The list elements of every field called C{name}: comma-separated
        values are split (quote-aware) unless the header may contain commas
        (L{NOT_SPLITTABLE}: WWW-Authenticate, Date, ...).
        """
        lines = self.getLines(name)
        if _key(name) in NOT_SPLITTABLE:
            return lines
        result = []
        for line in lines:
            result.extend(splitHeaderValues(line))
        return result

    def count(self, name: str) -> int:
        """
        How many header lines are called C{name}.
        """
        return len(self.getLines(name))

    def add(self, name: str, value: str) -> Headers:
        """
        Return a copy with a field appended.
        """
        return Headers(self.fields + (HeaderField(name, value),))

    def addFirst(self, name: str, value: str) -> Headers:
        """
        Return a copy with a field placed before all others of the same
        name (or first, if there are none): a new topmost Via.
        """
        key = _key(name)
        fields = list(self.fields)
        for index, f in enumerate(fields):
            if _key(f.name) == key:
                fields.insert(index, HeaderField(name, value))
                return Headers(tuple(fields))
        return Headers((HeaderField(name, value),) + self.fields)

    def remove(self, name: str) -> Headers:
        """
        Return a copy without any field called C{name}.
        """
        key = _key(name)
        return Headers(tuple(f for f in self.fields if _key(f.name) != key))

    def removeFirst(self, name: str) -> Headers:
        """
        Return a copy without the first field called C{name} (popping the
        topmost Via line).
        """
        key = _key(name)
        fields = list(self.fields)
        for index, f in enumerate(fields):
            if _key(f.name) == key:
                del fields[index]
                break
        return Headers(tuple(fields))

    def set(self, name: str, value: str) -> Headers:
        """
        Return a copy where C{name} has exactly one field with C{value},
        at the position of the first existing one (or appended).
        """
        key = _key(name)
        fields: list[HeaderField] = []
        done = False
        for f in self.fields:
            if _key(f.name) == key:
                if not done:
                    fields.append(HeaderField(f.name, value))
                    done = True
                continue
            fields.append(f)
        if not done:
            fields.append(HeaderField(name, value))
        return Headers(tuple(fields))

    def extend(self, pairs: Iterable[tuple[str, str]]) -> Headers:
        """
        Return a copy with C{(name, value)} fields appended.
        """
        return Headers(
            self.fields + tuple(HeaderField(name, value) for name, value in pairs)
        )

    def serialize(self) -> str:
        """
        The header lines, each ending in CRLF.
        """
        return "".join(f"{f.name}: {f.value}\r\n" for f in self.fields)


def _wrap(reason: str, value: str) -> HeaderError:
    return HeaderError(reason, value)


def _wrapURIError(exc: SIPURIError) -> HeaderError:
    return HeaderError(exc.reason, exc.text)


# --- Via ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Via:
    """
    One Via header element (RFC 3261 section 20.42, RFC 3581 rport).

    @ivar transport: Transport token, upper-cased (C{UDP}, C{TCP}, C{TLS},
        C{SCTP}, C{WS}...).
    @ivar host: The sent-by host (no IPv6 brackets).
    @ivar port: The sent-by port, or L{None}.
    @ivar parameters: via-params in order; values L{None} for flags (a bare
        C{rport}).
    @ivar protocolName: Normally C{SIP}.
    @ivar protocolVersion: Normally C{2.0}.
    """

    transport: str
    host: str
    port: int | None = None
    parameters: tuple[Parameter, ...] = ()
    protocolName: str = "SIP"
    protocolVersion: str = "2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        """
        Parse exactly one Via element.

        @raise HeaderError: Malformed or a list.
        """
        vias = parseVia(text)
        if len(vias) != 1:
            raise HeaderError("Expected a single Via", text)
        return vias[0]

    def parameter(self, name: str) -> str | None:
        """
        The (unquoted) value of parameter C{name}, case-insensitive.
        """
        return _unquotedParameter(self.parameters, name)

    def hasParameter(self, name: str) -> bool:
        """
        Whether parameter C{name} (case-insensitive) is present.
        """
        return _hasParameter(self.parameters, name)

    def withParameter(self, name: str, value: str | None = None) -> Via:
        """
        Return a copy with parameter C{name} set (replacing any present).
        """
        params = _withoutParameter(self.parameters, name)
        params.append((name, None if value is None else _paramValue(value)))
        return replace(self, parameters=tuple(params))

    @property
    def branch(self) -> str | None:
        """
        The C{branch} parameter, or L{None}.
        """
        return self.parameter("branch")

    @property
    def hasMagicCookie(self) -> bool:
        """
        Whether the branch starts with RFC 3261's C{z9hG4bK} (section 8.1.1.7).
        """
        branch = self.branch
        return branch is not None and branch.startswith("z9hG4bK")

    @property
    def received(self) -> str | None:
        """
        The C{received} parameter, or L{None}.
        """
        return self.parameter("received")

    @property
    def rport(self) -> int | bool | None:
        """
        The C{rport} parameter (RFC 3581): its port number, C{True} if
        present without a value (a request to fill it in), L{None} if
        absent or not a number.
        """
        if not self.hasParameter("rport"):
            return None
        value = self.parameter("rport")
        if value is None:
            return True
        port = _number(value, 65536)
        return port if port is not None and port <= 65535 else None

    @property
    def sentBy(self) -> str:
        """
        C{host[:port]} with IPv6 brackets.
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def serialize(self) -> str:
        """
        Render as C{SIP/2.0/UDP host:port;params}.
        """
        return (
            f"{self.protocolName}/{self.protocolVersion}/{self.transport} "
            f"{self.sentBy}{_formatParameters(self.parameters)}"
        )

    def __str__(self) -> str:
        return self.serialize()


def _readViaHost(scanner: _Scanner) -> tuple[str, int | None]:
    text = scanner.text
    if scanner.peek() == "[":
        close = text.find("]", scanner.pos)
        if close == -1:
            raise HeaderError("Unterminated IPv6 reference in Via", text)
        host = text[scanner.pos + 1 : close]
        scanner.pos = close + 1
    else:
        match = re.compile(r"[A-Za-z0-9\-.]+").match(text, scanner.pos)
        if match is None:
            raise HeaderError("Missing Via sent-by host", text)
        host = match.group()
        scanner.pos = match.end()
    try:
        checkHost(host, _HOSTNAME_RE)
    except HostPortError as e:
        raise HeaderError(_HOST_REASONS[e.reason], text) from None
    scanner.skipWS()
    port: int | None = None
    if scanner.peek() == ":":
        scanner.pos += 1
        scanner.skipWS()
        match = re.compile(r"[0-9]{1,5}").match(text, scanner.pos)
        if match is None or int(match.group()) > 65535:
            raise HeaderError("Invalid Via port", text)
        port = int(match.group())
        scanner.pos = match.end()
    return host, port


def parseVia(text: str) -> list[Via]:
    """
    Parse a Via header value (possibly a comma-separated list; LWS around
    C{/}, C{;}, C{=} and C{,} allowed as RFC 3261 section 25.1 says).

    @raise HeaderError: Malformed.
    """
    scanner = _Scanner(text)
    result = []
    try:
        while True:
            scanner.skipWS()
            name = scanner.token()
            scanner.skipWS()
            scanner.expect("/")
            scanner.skipWS()
            version = scanner.token()
            scanner.skipWS()
            scanner.expect("/")
            scanner.skipWS()
            transport = scanner.token()
            if not (name and version and transport):
                raise HeaderError("Invalid Via sent-protocol", text)
            before = scanner.pos
            scanner.skipWS()
            if scanner.pos == before:
                raise HeaderError("Missing space before Via sent-by", text)
            host, port = _readViaHost(scanner)
            params = _readGenericParams(scanner)
            result.append(
                Via(
                    transport=transport.upper(),
                    host=host,
                    port=port,
                    parameters=params,
                    protocolName=name.upper(),
                    protocolVersion=version,
                )
            )
            scanner.skipWS()
            if scanner.atEnd():
                return result
            scanner.expect(",")
    except HeaderError:
        raise
    except SIPURIError as e:
        raise _wrapURIError(e) from None


# --- CSeq --------------------------------------------------------------

_CSEQ_RE = re.compile(r"([0-9]+)[ \t\r\n]+([A-Za-z0-9\-.!%*_+`'~]+)\Z")


@dataclass(frozen=True, slots=True)
class CSeq:
    """
    A CSeq value (RFC 3261 section 20.16).

    @ivar number: Sequence number, below 2**31 (section 8.1.1.5).
    @ivar method: The method, case-sensitive.
    """

    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """
        @raise HeaderError: Malformed or out of range.
        """
        match = _CSEQ_RE.match(text.strip(" \t"))
        if match is None:
            raise HeaderError("Malformed CSeq", text)
        number = _number(match.group(1), 2**31)
        if number is None or number >= 2**31:
            raise HeaderError("CSeq number out of range", text)
        return cls(number, match.group(2))

    def serialize(self) -> str:
        """
        C{"<number> <method>"}.
        """
        return f"{self.number} {self.method}"

    def __str__(self) -> str:
        return self.serialize()


# --- Contact / Route ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactList:
    """
    A parsed Contact header: either the wildcard C{*} (REGISTER only,
    RFC 3261 section 10.2.2) or a list of addresses.

    @ivar addresses: The contacts (empty for the wildcard).
    @ivar star: Whether the value is C{*}.
    @ivar starParameters: Parameters after C{*} (e.g. C{expires=0}).
    """

    addresses: tuple[NameAddr, ...] = ()
    star: bool = False
    starParameters: tuple[Parameter, ...] = ()

    def serialize(self) -> str:
        """
        Render the header value.
        """
        if self.star:
            return "*" + _formatParameters(self.starParameters)
        return ", ".join(address.serialize() for address in self.addresses)


def parseContact(values: Sequence[str] | str) -> ContactList:
    """
    Parse the Contact header line(s) of a message.

    @param values: One header value or all Contact lines of a message.
    @raise HeaderError: Malformed, or C{*} mixed with addresses.
    """
    lines = [values] if isinstance(values, str) else list(values)
    addresses: list[NameAddr] = []
    star = False
    starParams: tuple[Parameter, ...] = ()
    for line in lines:
        stripped = line.strip(" \t")
        if stripped.startswith("*"):
            scanner = _Scanner(stripped, 1)
            try:
                starParams = _readGenericParams(scanner, stop="")
            except SIPURIError as e:
                raise _wrapURIError(e) from None
            star = True
            continue
        try:
            addresses.extend(parseNameAddrList(line))
        except SIPURIError as e:
            raise _wrapURIError(e) from None
    if star and (addresses or len(lines) > 1):
        raise HeaderError("Contact '*' mixed with other contacts", ", ".join(lines))
    return ContactList(tuple(addresses), star, starParams)


def parseRoute(values: Sequence[str] | str) -> list[NameAddr]:
    """
    Parse Route, Record-Route or Path header line(s) into one ordered list.

    @raise HeaderError: Malformed.
    """
    lines = [values] if isinstance(values, str) else list(values)
    result: list[NameAddr] = []
    for line in lines:
        try:
            result.extend(parseNameAddrList(line))
        except SIPURIError as e:
            raise _wrapURIError(e) from None
    return result


def parseAddress(text: str) -> NameAddr:
    """
    Parse a From, To, Refer-To or Referred-By value.

    @raise HeaderError: Malformed.
    """
    try:
        return parseNameAddr(text)
    except HeaderError:
        raise
    except SIPURIError as e:
        raise _wrapURIError(e) from None


# --- scalars -------------------------------------------------------------


def parseContentLength(text: str) -> int:
    """
    Parse Content-Length (RFC 3261 section 20.14: C{1*DIGIT}).

    @raise HeaderError: Not a non-negative decimal number.
    """
    stripped = text.strip(" \t")
    if not stripped.isdigit() or not stripped.isascii() or len(stripped) > 12:
        raise HeaderError("Invalid Content-Length", text)
    return int(stripped)


def parseMaxForwards(text: str) -> int:
    """
    Parse Max-Forwards (RFC 3261 section 20.22), 0 to 255 (RFC 4475
    section 3.1.2.4 treats larger values as errors).

    @raise HeaderError: Not a number in range.
    """
    number = _number(text.strip(" \t"), 256)
    if number is None or number > 255:
        raise HeaderError("Invalid Max-Forwards", text)
    return number


def parseExpires(text: str) -> int:
    """
    Parse an Expires (or Min-Expires) delta-seconds value.  Values above
    2**32-1 are clamped to it (RFC 3261 section 10.2.1.1 says a large
    value is to be taken as 2**32-1).

    @raise HeaderError: Not a number.
    """
    number = _number(text.strip(" \t"), 2**32 - 1)
    if number is None:
        raise HeaderError("Invalid Expires", text)
    return number


_CALLID_RE = re.compile(
    r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
    r"(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+)?\Z"
)


def parseCallID(text: str) -> str:
    """
    Validate a Call-ID (RFC 3261 C{callid = word [ "@" word ]}).

    @return: The Call-ID without surrounding whitespace.
    @raise HeaderError: Empty or containing characters outside C{word}.
    """
    stripped = text.strip(" \t")
    if not _CALLID_RE.match(stripped):
        raise HeaderError("Invalid Call-ID", text)
    return stripped


def parseTokenList(values: Sequence[str] | str) -> list[str]:
    """
    Parse a comma-separated token list (Allow, Supported, Require,
    Proxy-Require, Unsupported, Allow-Events...).

    @raise HeaderError: An element is not a token.
    """
    lines = [values] if isinstance(values, str) else list(values)
    result = []
    for line in lines:
        for item in splitHeaderValues(line):
            if not _TOKEN_FULL_RE.match(item):
                raise HeaderError("Invalid token in list", line)
            result.append(item)
    return result


_TOKEN_FULL_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")


def _parseTail(text: str, scanner: _Scanner) -> tuple[Parameter, ...]:
    try:
        return _readGenericParams(scanner, stop="")
    except SIPURIError as e:
        raise _wrapURIError(e) from None


# --- Content-Type ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaType:
    """
    A media type with parameters (Content-Type, Accept elements; RFC 3261
    section 20.15).

    @ivar type: Top-level type as written.
    @ivar subtype: Subtype as written.
    @ivar parameters: Parameters in order (quoted values keep quotes).
    """

    type: str
    subtype: str
    parameters: tuple[Parameter, ...] = ()

    @classmethod
    def parse(cls, text: str) -> MediaType:
        """
        @raise HeaderError: Malformed.
        """
        scanner = _Scanner(text)
        scanner.skipWS()
        kind = scanner.token()
        scanner.skipWS()
        if scanner.peek() != "/":
            raise HeaderError("Invalid media type", text)
        scanner.pos += 1
        scanner.skipWS()
        subtype = scanner.token()
        if not kind or not subtype:
            raise HeaderError("Invalid media type", text)
        return cls(kind, subtype, _parseTail(text, scanner))

    @property
    def mimeType(self) -> str:
        """
        C{type/subtype} in lower case, for comparisons.
        """
        return f"{self.type}/{self.subtype}".lower()

    def parameter(self, name: str) -> str | None:
        """
        The unquoted value of parameter C{name} (case-insensitive).
        """
        return _unquotedParameter(self.parameters, name)

    def serialize(self) -> str:
        """
        C{type/subtype;param=value}.
        """
        return f"{self.type}/{self.subtype}{_formatParameters(self.parameters)}"

    def __str__(self) -> str:
        return self.serialize()


# --- Event / Subscription-State -------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """
    An Event header (RFC 6665 section 8.2.1, compact form C{o}).

    @ivar package: Event package name with template suffixes
        (C{conference}, C{presence.winfo}); compared case-insensitively.
    @ivar parameters: Parameters, including C{id}.
    """

    package: str
    parameters: tuple[Parameter, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Event:
        """
        @raise HeaderError: Malformed.
        """
        scanner = _Scanner(text)
        scanner.skipWS()
        package = scanner.token()
        if not package:
            raise HeaderError("Invalid Event", text)
        return cls(package, _parseTail(text, scanner))

    @property
    def id(self) -> str | None:
        """
        The C{id} parameter, or L{None}.
        """
        for key, value in self.parameters:
            if key.lower() == "id":
                return None if value is None else unquoteString(value)
        return None

    def matches(self, other: Event) -> bool:
        """
        Whether two Event headers name the same subscription (package
        case-insensitive, C{id} equal; RFC 6665 section 8.2.1).
        """
        return self.package.lower() == other.package.lower() and self.id == other.id

    def serialize(self) -> str:
        """
        Render the value.
        """
        return self.package + _formatParameters(self.parameters)


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """
    A Subscription-State header (RFC 6665 section 8.2.3).

    @ivar state: C{active}, C{pending}, C{terminated} or an extension,
        lower-cased.
    @ivar parameters: Parameters (C{expires}, C{reason}, C{retry-after}).
    """

    state: str
    parameters: tuple[Parameter, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SubscriptionState:
        """
        @raise HeaderError: Malformed.
        """
        scanner = _Scanner(text)
        scanner.skipWS()
        state = scanner.token()
        if not state:
            raise HeaderError("Invalid Subscription-State", text)
        return cls(state.lower(), _parseTail(text, scanner))

    def _param(self, name: str) -> str | None:
        return _unquotedParameter(self.parameters, name)

    @property
    def expires(self) -> int | None:
        """
        The C{expires} parameter, or L{None}.
        """
        value = self._param("expires")
        return None if value is None else _number(value, 2**32 - 1)

    @property
    def reason(self) -> str | None:
        """
        The C{reason} parameter, lower-cased, or L{None}.
        """
        return _lowerOrNone(self._param("reason"))

    @property
    def retryAfter(self) -> int | None:
        """
        The C{retry-after} parameter, or L{None}.
        """
        value = self._param("retry-after")
        return None if value is None else _number(value, 2**32 - 1)

    def serialize(self) -> str:
        """
        Render the value.
        """
        return self.state + _formatParameters(self.parameters)


# --- Reason ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    """
    One Reason header element (RFC 3326).

    @ivar protocol: C{SIP}, C{Q.850}, ...
    @ivar parameters: Parameters (C{cause}, C{text}).
    """

    protocol: str
    parameters: tuple[Parameter, ...] = ()

    @property
    def cause(self) -> int | None:
        """
        The C{cause} parameter, or L{None}.
        """
        for key, value in self.parameters:
            if key.lower() == "cause" and value is not None:
                cause = _number(value, 2**32)
                if cause is not None and cause < 2**32:
                    return cause
        return None

    @property
    def text(self) -> str | None:
        """
        The unquoted C{text} parameter, or L{None}.
        """
        for key, value in self.parameters:
            if key.lower() == "text" and value is not None:
                return unquoteString(value)
        return None

    def serialize(self) -> str:
        """
        Render the element.
        """
        return self.protocol + _formatParameters(self.parameters)


def parseReasons(values: Sequence[str] | str) -> list[Reason]:
    """
    Parse Reason header line(s).

    @raise HeaderError: Malformed.
    """
    lines = [values] if isinstance(values, str) else list(values)
    result = []
    for line in lines:
        scanner = _Scanner(line)
        while True:
            scanner.skipWS()
            protocol = scanner.token()
            if not protocol:
                raise HeaderError("Invalid Reason", line)
            try:
                params = _readGenericParams(scanner)
            except SIPURIError as e:
                raise _wrapURIError(e) from None
            result.append(Reason(protocol, params))
            scanner.skipWS()
            if scanner.atEnd():
                break
            scanner.expect(",")
    return result


# --- session timers ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """
    A Session-Expires header (RFC 4028 section 4, compact form C{x}):
    C{delta-seconds *(SEMI se-params)}, C{se-params} being C{refresher=uac}
    or C{refresher=uas} or a generic parameter.

    @ivar interval: The session interval in seconds.
    @ivar parameters: Parameters, including C{refresher}.
    """

    interval: int
    parameters: tuple[Parameter, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SessionExpires:
        """
        @raise HeaderError: Malformed.
        """
        scanner = _Scanner(text)
        scanner.skipWS()
        interval = _number(scanner.token(), 2**32 - 1)
        if interval is None:
            raise HeaderError("Invalid Session-Expires", text)
        return cls(interval, _parseTail(text, scanner))

    @property
    def refresher(self) -> str | None:
        """
        The C{refresher} parameter (C{uac} or C{uas}, lower case), or
        L{None} when absent or of another value.
        """
        for key, value in self.parameters:
            if key.lower() == "refresher" and value is not None:
                lowered = unquoteString(value).lower()
                return lowered if lowered in ("uac", "uas") else None
        return None

    def withRefresher(self, refresher: str | None) -> SessionExpires:
        """
        A copy with the C{refresher} parameter set to C{refresher} (or
        removed for L{None}).
        """
        params = tuple(
            (k, v) for k, v in self.parameters if k.lower() != "refresher"
        )
        if refresher is not None:
            params += (("refresher", refresher),)
        return replace(self, parameters=params)

    def serialize(self) -> str:
        """
        Render the value.
        """
        return str(self.interval) + _formatParameters(self.parameters)


def parseMinSE(text: str) -> int:
    """
    Parse a Min-SE value (RFC 4028 section 5: C{delta-seconds *(SEMI
    generic-param)}); the parameters are ignored.

    @raise HeaderError: Malformed.
    """
    scanner = _Scanner(text)
    scanner.skipWS()
    number = _number(scanner.token(), 2**32 - 1)
    if number is None:
        raise HeaderError("Invalid Min-SE", text)
    _parseTail(text, scanner)
    return number


# --- authentication ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthHeader:
    """
    A challenge or credentials header: WWW-Authenticate,
    Proxy-Authenticate, Authorization, Proxy-Authorization (RFC 3261
    section 25.1, RFC 7616 Digest).

    @ivar scheme: The scheme as written (compare case-insensitively).
    @ivar parameters: C{auth-param}s in order; values keep their quotes.
    """

    scheme: str
    parameters: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def parse(cls, text: str) -> AuthHeader:
        """
        Parse C{scheme LWS auth-param *(COMMA auth-param)}.

        @raise HeaderError: Malformed.
        """
        scanner = _Scanner(text)
        scanner.skipWS()
        scheme = scanner.token()
        if not scheme:
            raise HeaderError("Missing authentication scheme", text)
        params: list[tuple[str, str]] = []
        scanner.skipWS()
        while not scanner.atEnd():
            name = scanner.token()
            scanner.skipWS()
            if not name or scanner.peek() != "=":
                raise HeaderError("Invalid auth-param", text)
            scanner.pos += 1
            scanner.skipWS()
            if scanner.peek() == '"':
                start = scanner.pos
                try:
                    _, end = _readQuoted(text, start)
                except SIPURIError as e:
                    raise _wrapURIError(e) from None
                value = text[start:end]
                scanner.pos = end
            else:
                value = scanner.token()
                if not value:
                    raise HeaderError("Invalid auth-param value", text)
            params.append((name, value))
            scanner.skipWS()
            if scanner.atEnd():
                break
            scanner.expect(",")
            scanner.skipWS()
        return cls(scheme, tuple(params))

    @property
    def isDigest(self) -> bool:
        """
        Whether the scheme is Digest.
        """
        return self.scheme.lower() == "digest"

    def parameter(self, name: str) -> str | None:
        """
        The unquoted value of C{name} (case-insensitive), or L{None}.
        """
        return _unquotedParameter(self.parameters, name)

    def serialize(self) -> str:
        """
        Render the value.
        """
        if not self.parameters:
            return self.scheme
        return (
            self.scheme
            + " "
            + ", ".join(f"{name}={value}" for name, value in self.parameters)
        )


AddressValue = Union[NameAddr, ContactList]
