# -*- test-case-name: tests.sip.test_uri -*-
"""
SIP and SIPS URIs, other absolute URIs, and the name-addr / addr-spec forms
used by From, To, Contact, Route, Record-Route, Refer-To and friends.

Implements RFC 3261 section 19.1 (URI components, escaping, comparison) and
the grammar of section 25.1::

    SIP-URI   = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
    SIPS-URI  = "sips:" [ userinfo ] hostport uri-parameters [ headers ]
    userinfo  = ( user / telephone-subscriber ) [ ":" password ] "@"
    hostport  = host [ ":" port ]
    host      = hostname / IPv4address / IPv6reference

Components are stored I{unescaped} (C{%HH} decoded) and escaped again on
output, so C{sip:%75ser@example.com} and C{sip:user@example.com} are the
same value.  Simplification: RFC 3261 section 19.1.4 keeps an escaped
I{reserved} character distinct from its literal form (C{a%3Bb} vs C{a;b} in
the user part); this module treats them as equal.

Other schemes (C{tel:}, C{http:}, C{urn:}, ...) are kept opaque as
L{AbsoluteURI}: they parse and serialize, and the upper layers decide what
to do with them (for example answer 416, RFC 3261 section 8.2.2.1).

Pure, sans-IO, standard library only (and L{stoxgw.formats.hostport},
which reads C{host [":" port]} for SIP and MSRP URIs alike).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Iterable, Union
from urllib.parse import quote, unquote

from stoxgw.formats import hostport
from stoxgw.formats.hostport import HostPortError, checkHost, splitHostPort

__all__ = [
    "SIPURIError",
    "SIPURI",
    "AbsoluteURI",
    "URI",
    "NameAddr",
    "parseURI",
    "parseNameAddr",
    "parseNameAddrList",
    "quoteString",
    "unquoteString",
    "TOKEN_CHARS",
]


class SIPURIError(ValueError):
    """
    Text is not a valid URI, name-addr or parameter list.

    @ivar reason: Human-readable explanation, usable as a SIP reason phrase
        suffix or Warning text.
    @ivar text: The offending text.
    @ivar status: The SIP status a request carrying this error deserves
        (always 400 here; 416 for unsupported schemes is the UA core's call).
    """

    status = 400

    def __init__(self, reason: str, text: str = "") -> None:
        super().__init__(reason, text)
        self.reason = reason
        self.text = text

    def __str__(self) -> str:
        return f"{self.reason}: {self.text!r}"


#: RFC 3261 section 25.1 C{token} characters (besides alphanumerics).
TOKEN_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"
)

_ALNUM = "A-Za-z0-9"
_MARK = r"\-_.!~*'()"
_ESC = r"%[0-9A-Fa-f]{2}"
_USER_RE = re.compile(rf"(?:[{_ALNUM}{_MARK}&=+$,;?/]|{_ESC})+\Z")
_PASSWORD_RE = re.compile(rf"(?:[{_ALNUM}{_MARK}&=+$,]|{_ESC})*\Z")
_PARAMCHAR_RE = re.compile(rf"(?:[{_ALNUM}{_MARK}\[\]/:&+$]|{_ESC})+\Z")
_HNAME_RE = re.compile(rf"(?:[{_ALNUM}{_MARK}\[\]/?:+$]|{_ESC})+\Z")
_HVALUE_RE = re.compile(rf"(?:[{_ALNUM}{_MARK}\[\]/?:+$]|{_ESC})*\Z")
_HOSTNAME_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?\Z"
)
_IPV4_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}\Z")
_PORT_RE = re.compile(r"[0-9]{1,5}\Z")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_TOKEN_FULL_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
# gen-value = token / host / quoted-string; "host" adds ":" "[" "]".
_GENVALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")
_WS = " \t"

# "safe" sets for re-escaping decoded components (alphanumerics and
# "_.-~" are always safe for urllib.parse.quote).
_USER_SAFE = "!*'()&=+$,;?/"
_PASSWORD_SAFE = "!*'()&=+$,"
_PARAM_SAFE = "!*'()[]/:&+$"
_HEADER_SAFE = "!*'()[]/?:+$"


def _decode(text: str) -> str:
    return unquote(text, errors="surrogateescape")


def _number(text: str, limit: int) -> int | None:
    """
    A C{1*DIGIT} value, any number of digits long: larger than C{limit}
    gives C{limit} (C{int} alone refuses more than 4300 digits with a
    C{ValueError}).

    @return: The number, at most C{limit}; L{None} if C{text} is not ASCII
        digits.
    """
    if not text.isascii() or not text.isdigit():
        return None
    significant = text.lstrip("0")
    if len(significant) > len(str(limit)):
        return limit
    return min(int(significant or "0"), limit)


def _encode(text: str, safe: str) -> str:
    return quote(text, safe=safe, errors="surrogateescape")


def quoteString(text: str) -> str:
    """
    Make an RFC 3261 C{quoted-string}: wrap in double quotes, escaping
    C{"} and C{\\} (and control characters other than tab) with a backslash.
    """
    out = []
    for char in text:
        if char in '"\\' or (ord(char) < 0x20 and char != "\t") or char == "\x7f":
            out.append("\\" + char)
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def unquoteString(text: str) -> str:
    """
    Undo L{quoteString}; text that is not quoted is returned unchanged.

    @raise SIPURIError: The quoted string is not terminated.
    """
    if not text.startswith('"'):
        return text
    value, end = _readQuoted(text, 0)
    if text[end:].strip(_WS):
        raise SIPURIError("Text after quoted string", text)
    return value


def _readQuoted(text: str, pos: int) -> tuple[str, int]:
    """
    Read a quoted-string starting at C{text[pos] == '"'}.

    @return: the unescaped contents and the index just past the closing
        quote.
    """
    out = []
    index = pos + 1
    length = len(text)
    while index < length:
        char = text[index]
        if char == "\\":
            if index + 1 >= length:
                break
            nxt = text[index + 1]
            if nxt in "\r\n":
                raise SIPURIError("Invalid quoted-pair", text)
            out.append(nxt)
            index += 2
            continue
        if char == '"':
            return "".join(out), index + 1
        if char in "\r\n":
            break
        out.append(char)
        index += 1
    raise SIPURIError("Unterminated quoted string", text)


#: The words of L{splitHostPort}'s and L{checkHost}'s errors in SIP.
_HOST_REASONS = {
    hostport.UNCLOSED: "Unterminated IPv6 reference",
    hostport.AFTER_BRACKET: "Invalid text after IPv6 reference",
    hostport.NOT_IPV6: "Invalid IPv6 reference",
    hostport.EMPTY: "Missing host",
    hostport.BAD_IPV6: "Invalid IPv6 reference",
    hostport.BAD_IPV4: "Invalid IPv4 address",
    hostport.BAD_NAME: "Invalid host",
}


Parameter = tuple[str, Union[str, None]]


@dataclass(frozen=True, slots=True, eq=False)
class SIPURI:
    """
    A C{sip:} or C{sips:} URI (RFC 3261 section 19.1).

    All text components are unescaped.  Equality and hashing follow RFC
    3261 section 19.1.4 (see L{SIPURI.__eq__}); use L{SIPURI.identical} for
    a strict component-by-component comparison.

    @ivar scheme: C{"sip"} or C{"sips"} (lower case).
    @ivar host: Host name, IPv4 address or IPv6 address (no brackets).
    @ivar user: The user part, or L{None}.
    @ivar password: The password, or L{None} (parsed; never generate one).
    @ivar port: The explicit port, or L{None}.
    @ivar parameters: URI parameters in order, as C{(name, value)} with
        C{value} L{None} for a flag parameter such as C{lr}.
    @ivar headers: URI headers (C{?name=value&...}) in order.
    """

    scheme: str
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    parameters: tuple[Parameter, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def fromString(cls, text: str) -> SIPURI:
        """
        Parse a SIP or SIPS URI.

        @raise SIPURIError: C{text} is not one.
        """
        uri = parseURI(text)
        if not isinstance(uri, SIPURI):
            raise SIPURIError("Not a SIP or SIPS URI", text)
        return uri

    @property
    def secure(self) -> bool:
        """
        Whether this is a C{sips:} URI.
        """
        return self.scheme == "sips"

    @property
    def numericHost(self) -> bool:
        """
        Whether the host is an IP address literal.
        """
        return ":" in self.host or bool(_IPV4_RE.match(self.host))

    @property
    def hostport(self) -> str:
        """
        C{host[:port]} with IPv6 brackets as needed.
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def parameter(self, name: str) -> str | None:
        """
        The value of the first parameter called C{name} (case-insensitive),
        or L{None} if absent or a flag.  Use L{hasParameter} for flags.
        """
        return _findParameter(self.parameters, name)

    def hasParameter(self, name: str) -> bool:
        """
        Whether a parameter called C{name} (case-insensitive) is present.
        """
        return _hasParameter(self.parameters, name)

    @property
    def transport(self) -> str | None:
        """
        The C{transport} parameter, lower-cased, or L{None}.
        """
        return _lowerOrNone(self.parameter("transport"))

    @property
    def looseRouting(self) -> bool:
        """
        Whether the C{lr} parameter is present (RFC 3261 section 19.1.1).
        """
        return self.hasParameter("lr")

    def withParameter(self, name: str, value: str | None = None) -> SIPURI:
        """
        Return a copy with parameter C{name} set (replacing any present).
        """
        params = _withoutParameter(self.parameters, name)
        params.append((name, value))
        return replace(self, parameters=tuple(params))

    def withoutParameter(self, name: str) -> SIPURI:
        """
        Return a copy without parameter C{name}.
        """
        return replace(self, parameters=tuple(_withoutParameter(self.parameters, name)))

    def withoutHeaders(self) -> SIPURI:
        """
        Return a copy without URI headers (as needed for a Request-URI,
        RFC 3261 section 19.1.5).
        """
        return replace(self, headers=())

    def serialize(self) -> str:
        """
        Render the URI, escaping what its component grammar requires.
        """
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(_encode(self.user, _USER_SAFE))
            if self.password is not None:
                parts.append(":" + _encode(self.password, _PASSWORD_SAFE))
            parts.append("@")
        parts.append(self.hostport)
        for name, value in self.parameters:
            parts.append(";" + _encode(name, _PARAM_SAFE))
            if value is not None:
                parts.append("=" + _encode(value, _PARAM_SAFE))
        for index, (name, value) in enumerate(self.headers):
            parts.append("?" if index == 0 else "&")
            parts.append(_encode(name, _HEADER_SAFE) + "=")
            parts.append(_encode(value, _HEADER_SAFE))
        return "".join(parts)

    def __str__(self) -> str:
        return self.serialize()

    def identical(self, other: object) -> bool:
        """
        Strict equality of every component, in order.
        """
        if not isinstance(other, SIPURI):
            return False
        return (
            self.scheme,
            self.user,
            self.password,
            self.host,
            self.port,
            self.parameters,
            self.headers,
        ) == (
            other.scheme,
            other.user,
            other.password,
            other.host,
            other.port,
            other.parameters,
            other.headers,
        )

    def _comparisonKey(self) -> tuple[object, ...]:
        params: dict[str, str | None] = {}
        for name, value in self.parameters:
            params.setdefault(name.lower(), None if value is None else value.lower())
        headers = sorted((n.lower(), v.lower()) for n, v in self.headers)
        return (
            self.scheme,
            self.user,
            self.password,
            self.host.lower(),
            self.port,
            params,
            headers,
        )

    def __eq__(self, other: object) -> bool:
        """
        RFC 3261 section 19.1.4 comparison: scheme and userinfo exact (after
        unescaping), host case-insensitive, ports equal (an omitted port
        differs from an explicit default one), parameters present in both
        must match (names and values case-insensitive); C{user}, C{ttl},
        C{method}, C{maddr} and C{transport} present in only one never
        match; other parameters present in only one are ignored; headers
        must all match.
        """
        if not isinstance(other, SIPURI):
            return NotImplemented
        mine = self._comparisonKey()
        theirs = other._comparisonKey()
        if mine[:5] != theirs[:5] or mine[6] != theirs[6]:
            return False
        myParams = mine[5]
        theirParams = theirs[5]
        assert isinstance(myParams, dict) and isinstance(theirParams, dict)
        for name in set(myParams) | set(theirParams):
            if name in myParams and name in theirParams:
                if myParams[name] != theirParams[name]:
                    return False
            elif name in _SIGNIFICANT_PARAMS:
                return False
        return True

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, SIPURI):
            return NotImplemented
        return not self.__eq__(other)

    def __hash__(self) -> int:
        significant = tuple(
            sorted(
                (name.lower(), (value or "").lower())
                for name, value in self.parameters
                if name.lower() in _SIGNIFICANT_PARAMS
            )
        )
        return hash(
            (
                self.scheme,
                self.user,
                self.password,
                self.host.lower(),
                self.port,
                significant,
            )
        )


#: Parameters that make two URIs differ when present in only one of them
#: (RFC 3261 section 19.1.4; transport is listed in its example rules).
_SIGNIFICANT_PARAMS = frozenset({"user", "ttl", "method", "maddr", "transport"})


@dataclass(frozen=True, slots=True)
class AbsoluteURI:
    """
    A URI of a scheme other than sip/sips, kept as written (RFC 3261
    C{absoluteURI}).

    @ivar text: The whole URI.
    """

    text: str

    @property
    def scheme(self) -> str:
        """
        The scheme, lower-cased.
        """
        return self.text.partition(":")[0].lower()

    def serialize(self) -> str:
        """
        The URI text.
        """
        return self.text

    def __str__(self) -> str:
        return self.text


URI = Union[SIPURI, AbsoluteURI]


def _parseParameters(text: str, whole: str) -> tuple[Parameter, ...]:
    params: list[Parameter] = []
    if not text:
        return ()
    for item in text.split(";"):
        name, sep, value = item.partition("=")
        if not _PARAMCHAR_RE.match(name):
            raise SIPURIError("Invalid URI parameter", whole)
        if sep:
            if not _PARAMCHAR_RE.match(value):
                raise SIPURIError("Invalid URI parameter value", whole)
            params.append((_decode(name), _decode(value)))
        else:
            params.append((_decode(name), None))
    return tuple(params)


def _parseHeaders(text: str, whole: str) -> tuple[tuple[str, str], ...]:
    headers = []
    for item in text.split("&"):
        name, sep, value = item.partition("=")
        if not sep or not _HNAME_RE.match(name) or not _HVALUE_RE.match(value):
            raise SIPURIError("Invalid URI header", whole)
        headers.append((_decode(name), _decode(value)))
    return tuple(headers)


def parseURI(text: str) -> URI:
    """
    Parse a URI: SIP/SIPS into L{SIPURI}, any other scheme into an opaque
    L{AbsoluteURI}.

    @raise SIPURIError: C{text} is not a URI.
    """
    scheme, sep, rest = text.partition(":")
    if not sep or not _SCHEME_RE.match(scheme):
        raise SIPURIError("Missing or invalid URI scheme", text)
    lowered = scheme.lower()
    if lowered not in ("sip", "sips"):
        if not rest or any(c in text for c in ' \t\r\n<>"'):
            raise SIPURIError("Invalid URI", text)
        return AbsoluteURI(text)

    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at != -1:
        userinfo, rest = rest[:at], rest[at + 1 :]
        if "@" in rest:
            raise SIPURIError("Unescaped '@' in URI", text)
        userText, colon, passwordText = userinfo.partition(":")
        if not _USER_RE.match(userText):
            raise SIPURIError("Invalid user part", text)
        user = _decode(userText)
        if colon:
            if not _PASSWORD_RE.match(passwordText):
                raise SIPURIError("Invalid password", text)
            password = _decode(passwordText)
    rest, qmark, headersText = rest.partition("?")
    hostPortText, _, paramsText = rest.partition(";")
    try:
        host, portText = splitHostPort(hostPortText)
        checkHost(host, _HOSTNAME_RE)
    except HostPortError as e:
        raise SIPURIError(_HOST_REASONS[e.reason], text) from None
    port: int | None = None
    if portText is not None:
        if not _PORT_RE.match(portText) or int(portText) > 65535:
            raise SIPURIError("Invalid port", text)
        port = int(portText)
    parameters = _parseParameters(paramsText, text)
    headers = _parseHeaders(headersText, text) if qmark else ()
    return SIPURI(
        scheme=lowered,
        host=host,
        user=user,
        password=password,
        port=port,
        parameters=parameters,
        headers=headers,
    )


class _Scanner:
    """
    A cursor over header-value text for the recursive-descent parts of the
    RFC 3261 grammar (name-addr, parameter lists, comma-separated lists).
    """

    __slots__ = ("text", "pos")

    def __init__(self, text: str, pos: int = 0) -> None:
        self.text = text
        self.pos = pos

    def skipWS(self) -> None:
        text = self.text
        pos = self.pos
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        self.pos = pos

    def atEnd(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self) -> str:
        match = _TOKEN_RE.match(self.text, self.pos)
        if match is None:
            return ""
        self.pos = match.end()
        return match.group()

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise SIPURIError(f"Expected {char!r}", self.text)
        self.pos += 1


def _readGenericParams(scanner: _Scanner, stop: str = ",") -> tuple[Parameter, ...]:
    """
    Read C{*( SEMI generic-param )} where generic-param = token [ EQUAL
    gen-value ].  Quoted values are kept with their quotes so that they
    serialize unchanged; L{NameAddr.parameter} unquotes.
    """
    params: list[Parameter] = []
    text = scanner.text
    while True:
        scanner.skipWS()
        if scanner.peek() != ";":
            break
        scanner.pos += 1
        scanner.skipWS()
        name = scanner.token()
        if not name:
            raise SIPURIError("Empty parameter", text)
        scanner.skipWS()
        value: str | None = None
        if scanner.peek() == "=":
            scanner.pos += 1
            scanner.skipWS()
            if scanner.peek() == '"':
                start = scanner.pos
                _, end = _readQuoted(text, start)
                value = text[start:end]
                scanner.pos = end
            else:
                match = _GENVALUE_RE.match(text, scanner.pos)
                if match is None:
                    raise SIPURIError("Invalid parameter value", text)
                value = match.group()
                scanner.pos = match.end()
        params.append((name, value))
    scanner.skipWS()
    if not scanner.atEnd() and scanner.peek() not in stop:
        raise SIPURIError("Unexpected text after parameters", text)
    return tuple(params)


def _formatParameters(params: Iterable[Parameter]) -> str:
    out = []
    for name, value in params:
        if value is None:
            out.append(f";{name}")
        else:
            out.append(f";{name}={value}")
    return "".join(out)


def _findParameter(
    parameters: Iterable[tuple[str, str | None]], name: str
) -> str | None:
    """
    The raw value of the first parameter called C{name} (case-insensitive),
    or L{None} if absent or a flag.
    """
    lowered = name.lower()
    for key, value in parameters:
        if key.lower() == lowered:
            return value
    return None


def _unquotedParameter(
    parameters: Iterable[tuple[str, str | None]], name: str
) -> str | None:
    """
    L{_findParameter}, with a quoted-string value unquoted.
    """
    value = _findParameter(parameters, name)
    return None if value is None else unquoteString(value)


def _hasParameter(parameters: Iterable[Parameter], name: str) -> bool:
    """
    Whether a parameter called C{name} (case-insensitive) is present.
    """
    lowered = name.lower()
    return any(key.lower() == lowered for key, _ in parameters)


def _withoutParameter(parameters: Iterable[Parameter], name: str) -> list[Parameter]:
    """
    The parameters other than those called C{name} (case-insensitive).
    """
    lowered = name.lower()
    return [(k, v) for k, v in parameters if k.lower() != lowered]


def _lowerOrNone(value: str | None) -> str | None:
    """
    C{value} lower-cased, or L{None}.
    """
    return value.lower() if value is not None else None


def _paramValue(value: str) -> str:
    """
    Quote a parameter value unless it is a token or host (RFC 3261
    C{gen-value}).
    """
    if value and _GENVALUE_RE.fullmatch(value):
        return value
    return quoteString(value)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """
    A C{name-addr} or C{addr-spec} with header parameters, as found in
    From, To, Contact, Route, Record-Route, Refer-To, Reply-To (RFC 3261
    section 20.10 and 25.1).

    @ivar uri: The address.
    @ivar displayName: The unquoted display name, or L{None}.
    @ivar parameters: Header parameters in order (C{tag}, C{expires},
        C{q}, C{isfocus}, C{+sip.instance}...), values as written (a quoted
        value keeps its quotes; see L{NameAddr.parameter}).
    """

    uri: URI
    displayName: str | None = None
    parameters: tuple[Parameter, ...] = field(default=())

    @classmethod
    def fromString(cls, text: str) -> NameAddr:
        """
        Parse a single name-addr or addr-spec with parameters.

        @raise SIPURIError: C{text} is not one.
        """
        return parseNameAddr(text)

    def parameter(self, name: str) -> str | None:
        """
        The unquoted value of header parameter C{name} (case-insensitive),
        or L{None} if absent or a flag (see L{hasParameter}).
        """
        return _unquotedParameter(self.parameters, name)

    def hasParameter(self, name: str) -> bool:
        """
        Whether header parameter C{name} (case-insensitive) is present.
        """
        return _hasParameter(self.parameters, name)

    def withParameter(self, name: str, value: str | None = None) -> NameAddr:
        """
        Return a copy with header parameter C{name} set (replacing any),
        quoting C{value} if it is not a token or host.
        """
        params = _withoutParameter(self.parameters, name)
        params.append((name, None if value is None else _paramValue(value)))
        return replace(self, parameters=tuple(params))

    def withoutParameter(self, name: str) -> NameAddr:
        """
        Return a copy without header parameter C{name}.
        """
        return replace(self, parameters=tuple(_withoutParameter(self.parameters, name)))

    @property
    def tag(self) -> str | None:
        """
        The C{tag} parameter (RFC 3261 section 19.3), or L{None}.
        """
        return self.parameter("tag")

    def withTag(self, tag: str) -> NameAddr:
        """
        Return a copy with the given C{tag}.
        """
        return self.withParameter("tag", tag)

    @property
    def isFocus(self) -> bool:
        """
        Whether the C{isfocus} feature parameter is present (RFC 3840,
        RFC 4579: the Contact of a conference focus).
        """
        return self.hasParameter("isfocus")

    @property
    def instanceID(self) -> str | None:
        """
        The unquoted C{+sip.instance} value (RFC 5626), e.g.
        C{<urn:uuid:...>}, or L{None}.
        """
        return self.parameter("+sip.instance")

    @property
    def expires(self) -> int | None:
        """
        The C{expires} parameter as an integer, or L{None} if absent or not
        a number.
        """
        value = self.parameter("expires")
        return None if value is None else _number(value, 2**32 - 1)

    def serialize(self) -> str:
        """
        Render as name-addr (always with angle brackets, which is valid for
        every URI and header).
        """
        prefix = ""
        if self.displayName is not None:
            prefix = quoteString(self.displayName) + " "
        return f"{prefix}<{self.uri.serialize()}>" + _formatParameters(self.parameters)

    def __str__(self) -> str:
        return self.serialize()


def _readNameAddr(scanner: _Scanner) -> NameAddr:
    text = scanner.text
    scanner.skipWS()
    displayName: str | None = None
    start = scanner.pos
    if scanner.peek() == '"':
        displayName, scanner.pos = _readQuoted(text, scanner.pos)
        scanner.skipWS()
        if scanner.peek() != "<":
            raise SIPURIError("Quoted display name without <URI>", text)
    elif scanner.peek() != "<":
        # Either "*(token LWS) <uri>" or an addr-spec.
        words = []
        while True:
            word = scanner.token()
            if not word:
                break
            words.append(word)
            scanner.skipWS()
        if scanner.peek() == "<" and words:
            displayName = " ".join(words)
        else:
            if words and "<" in text[scanner.pos :] and scanner.peek() != ":":
                raise SIPURIError(
                    "Display name is neither tokens nor a quoted string", text
                )
            scanner.pos = start
            return _readAddrSpec(scanner)
    scanner.expect("<")
    close = text.find(">", scanner.pos)
    if close == -1:
        raise SIPURIError("Missing '>'", text)
    uriText = text[scanner.pos : close]
    if any(c in uriText for c in " \t\r\n"):
        raise SIPURIError("Whitespace inside <URI>", text)
    uri = parseURI(uriText)
    scanner.pos = close + 1
    params = _readGenericParams(scanner)
    return NameAddr(uri=uri, displayName=displayName, parameters=params)


def _readAddrSpec(scanner: _Scanner) -> NameAddr:
    """
    An addr-spec without angle brackets: the URI ends at the first C{;}
    (what follows are header parameters), and it may not contain C{,},
    C{?} or whitespace (RFC 3261 section 20.10).
    """
    text = scanner.text
    start = scanner.pos
    pos = start
    while pos < len(text) and text[pos] not in ";, \t\r\n":
        pos += 1
    uriText = text[start:pos]
    if not uriText:
        raise SIPURIError("Missing URI", text)
    if "?" in uriText or "<" in uriText or ">" in uriText or '"' in uriText:
        raise SIPURIError("URI with '?' or '<>' must be enclosed in <>", text)
    uri = parseURI(uriText)
    scanner.pos = pos
    params = _readGenericParams(scanner)
    return NameAddr(uri=uri, displayName=None, parameters=params)


def parseNameAddr(text: str) -> NameAddr:
    """
    Parse exactly one name-addr/addr-spec with its header parameters.

    @raise SIPURIError: C{text} is not one (or is a list).
    """
    scanner = _Scanner(text)
    result = _readNameAddr(scanner)
    scanner.skipWS()
    if not scanner.atEnd():
        raise SIPURIError("Unexpected text after address", text)
    return result


def parseNameAddrList(text: str) -> list[NameAddr]:
    """
    Parse a comma-separated list of name-addr/addr-spec values (Contact,
    Route, Record-Route...).

    @raise SIPURIError: An element is invalid or the list is empty.
    """
    scanner = _Scanner(text)
    result = []
    while True:
        result.append(_readNameAddr(scanner))
        scanner.skipWS()
        if scanner.atEnd():
            return result
        scanner.expect(",")


def contactIsFocus(contact: str | None) -> bool:
    """
    Whether a Contact header value (its first address) carries the
    C{isfocus} feature tag of a conference focus (RFC 4579 section 3.3,
    RFC 3840).
    """
    if not contact:
        return False
    try:
        address = NameAddr.fromString(contact.split(",")[0])
    except ValueError:
        return False
    return any(name.lower() == "isfocus" for name, _ in address.parameters)
