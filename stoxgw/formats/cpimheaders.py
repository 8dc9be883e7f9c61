# -*- test-case-name: tests.formats.test_cpim -*-
"""
The header fields of RFC 3862 C{message/cpim}: the value grammar shared
by every CPIM header (names with namespace prefixes, escapes, quoting, URI
parameters), the typed values of the core headers (L{CPIMAddress},
L{CPIMSubject}, L{CPIMNamespace}, C{DateTime}), one header line
(L{CPIMHeader}), the encapsulated MIME headers (L{MIMEHeader},
L{MediaType}) and the errors (L{CPIMError}, L{CPIMRequireError}).

L{stoxgw.formats.cpim} reads and builds whole messages from these and
exports every public name of this module: import them from there.

Sans-IO: standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import ClassVar, Sequence
from urllib.parse import quote, unquote


#: Longest header line accepted, in octets (without its CRLF).
MAX_HEADER_LINE_LENGTH = 8192

# RFC 3862 §3.6: NAMECHAR (US-ASCII except ".", CTLs and SEPARATORS).
_NAMECHAR = r"A-Za-z0-9!#$%&'*+\-^_`|~"
_NAME = f"[{_NAMECHAR}]+"
_NAME_RE = re.compile(_NAME)
_HEADER_NAME_RE = re.compile(f"(?:({_NAME})\\.)?({_NAME})")
# TOKENCHAR = NAMECHAR / "." / UCS-high
_TOKEN_RE = re.compile(f"[{_NAMECHAR}.\\u0080-\\U0010ffff]+")
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[\x21\x23-\x3b\x3d\x3f-\x5b\x5d-\x7e]+")
_NS_VALUE_RE = re.compile(f"(?:({_NAME}) ?)?<([^<>]*)>")
_AFTER_BRACKET_PARAMS_RE = re.compile(r"(?:;[A-Za-z0-9\-_.!~*'%]+(?:=[^;\s<>\"]*)?)+")
_DATETIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
# RFC 2045 token (MIME): printable US-ASCII except SP and tspecials.
_MIME_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_MEDIA_TYPE_RE = re.compile(f"\\s*({_MIME_TOKEN})/({_MIME_TOKEN})\\s*")
_MEDIA_PARAM_RE = re.compile(
    f';\\s*({_MIME_TOKEN})=(?:({_MIME_TOKEN})|"((?:[^"\\\\]|\\\\.)*)")\\s*'
)
_MIME_HEADER_NAME_RE = re.compile(rb"[\x21-\x39\x3b-\x7e]+")

_UNESCAPES = {"b": "\b", "t": "\t", "n": "\n", "r": "\r"}
_ESCAPES = {"\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
# SIP "paramchar" minus "escaped": what a URI parameter value keeps unencoded.
_URI_PARAM_SAFE = "-_.!~*'()[]/:&+$"


class CPIMError(Exception):
    """
    A C{message/cpim} body is malformed (RFC 3862 §2-§4).

    @ivar reason: what is wrong, for logs and error replies.
    @cvar msrpStatus: the MSRP status to answer a SEND carrying such a body
        with (RFC 4975 §7.2: 400, the request was unintelligible).
    """

    msrpStatus: ClassVar[int] = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CPIMRequireError(CPIMError):
    """
    A C{Require} header names headers or features this receiver does not
    understand, so the message can't be processed (RFC 3862 §3.5, §4.7; R-174).

    @ivar unsupported: the required header names not understood, as written.
    @cvar msrpStatus: 415 (RFC 4975 §10.6; SPEC R-174 IMPL).
    """

    msrpStatus: ClassVar[int] = 415

    def __init__(self, unsupported: Sequence[str]) -> None:
        self.unsupported = tuple(unsupported)
        super().__init__(
            "Require names unsupported header(s): " + ", ".join(unsupported)
        )


def unescapeHeaderValue(text: str) -> str:
    """
    Decode the RFC 3862 §2.3 escapes (C{\\\\ \\" \\' \\b \\t \\n \\r}, C{\\uXXXX}).

    As §2.3.1 says, an unrecognized escape stands for the character after the
    backslash and an isolated backslash at the end is ignored; a UTF-16
    surrogate pair written as two C{\\u} escapes is combined, and a lone
    surrogate becomes U+FFFD.

    @param text: a header value (or part of one) as written.
    @return: the decoded text.
    """
    out: list[str] = []
    i = 0
    length = len(text)
    while i < length:
        char = text[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        if i + 1 == length:
            break
        nxt = text[i + 1]
        if nxt == "u" and _isHex4(text[i + 2 : i + 6]):
            out.append(chr(int(text[i + 2 : i + 6], 16)))
            i += 6
        else:
            out.append(_UNESCAPES.get(nxt, nxt))
            i += 2
    return _combineSurrogates("".join(out))


def escapeHeaderValue(text: str, quoted: bool = False) -> str:
    """
    Encode C{text} for a CPIM header with the RFC 3862 §2.3.1 escapes: the
    backslash and backspace, tab, linefeed, carriage return as their special
    sequences, other control characters (U+0000-U+001F, U+007F) as
    C{\\uXXXX}, and (in a quoted string) the double quote as C{\\"}. Nothing
    else is escaped (§2.3.1: other characters MUST NOT be).

    @param text: the text to encode.
    @param quoted: whether the result goes between double quotes.
    @return: the encoded text.
    """
    out: list[str] = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        elif quoted and char == '"':
            out.append('\\"')
        else:
            out.append(char)
    return "".join(out)


def parseDateTime(text: str) -> datetime:
    """
    Parse an RFC 3339 C{date-time} (RFC 3862 §4.4): fractional seconds and a
    numeric offset or C{Z} (either case for C{T} and C{Z}; C{-00:00} means
    UTC). Fractions finer than a microsecond are truncated.

    @param text: the value.
    @return: a timezone-aware datetime with the offset as written.
    @raise ValueError: C{text} is not an RFC 3339 date-time (leap seconds
        included: Python can't represent them).
    """
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    year, month, day, hour, minute, second = (
        int(g) for g in match.group(1, 2, 3, 4, 5, 6)
    )
    fraction = match.group(7)
    microsecond = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if match.group(8):
        tz = timezone.utc
    else:
        offsetHours, offsetMinutes = int(match.group(10)), int(match.group(11))
        if offsetHours > 23 or offsetMinutes > 59:
            raise ValueError(f"bad UTC offset in {text!r}")
        offset = timedelta(hours=offsetHours, minutes=offsetMinutes)
        tz = timezone(-offset if match.group(9) == "-" else offset)
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tz)


def formatDateTime(value: datetime) -> str:
    """
    Format an aware datetime as an RFC 3339 C{date-time} in the offset it
    holds: C{Z} for UTC, else C{+hh:mm}/C{-hh:mm}; fractional seconds only if
    non-zero, without trailing zeros.

    @param value: a timezone-aware datetime.
    @return: the RFC 3339 text.
    @raise ValueError: C{value} is naive or its offset has seconds.
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("a CPIM DateTime needs a timezone-aware datetime")
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    if offset == timedelta(0):
        return text + "Z"
    seconds = int(offset.total_seconds())
    if seconds % 60:
        raise ValueError("RFC 3339 offsets are whole minutes")
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


@dataclass(frozen=True, slots=True)
class CPIMAddress:
    """
    The value of a C{From}, C{To} or C{cc} header (RFC 3862 §4.1-4.3):
    C{[Formal-name] "<" URI ">"}.

    @ivar uri: the URI between the angle brackets, e.g.
        C{sip:montague@chat.example.org;gr=Romeo}.
    @ivar formalName: the decoded formal (display) name, or L{None}.
    @ivar parametersAfterBracket: the input had URI parameters after the
        C{>} (the malformed RFC 7702 form, R-172); they are part of L{uri}.
        Not part of equality.
    """

    uri: str
    formalName: str | None = None
    parametersAfterBracket: bool = field(default=False, compare=False)

    @classmethod
    def parse(cls, value: str) -> CPIMAddress:
        """
        Parse an address header value as written (escapes not yet decoded).

        @param value: e.g. C{"Romeo" <sip:romeo@example.org>}.
        @raise CPIMError: the value is not C{[Formal-name] "<" URI ">"},
            optionally followed by C{;name=value} URI parameters.
        """
        formalName: str | None = None
        if value.startswith('"'):
            end = _endOfQuotedString(value, 0)
            formalName = unescapeHeaderValue(value[1:end])
            rest = value[end + 1 :]
            if rest.startswith(" "):
                rest = rest[1:]
        else:
            bracket = value.find("<")
            if bracket < 0:
                raise CPIMError(f"address without '<URI>': {value!r}")
            namePart, rest = value[:bracket], value[bracket:]
            if namePart:
                if not namePart.endswith(" ") or not all(
                    _TOKEN_RE.fullmatch(word) for word in namePart[:-1].split(" ")
                ):
                    raise CPIMError(f"invalid formal name (quote it): {namePart!r}")
                formalName = namePart[:-1]
        if not rest.startswith("<"):
            raise CPIMError(f"expected '<' in address: {value!r}")
        close = rest.find(">")
        if close < 0:
            raise CPIMError(f"missing '>' in address: {value!r}")
        uri = rest[1:close]
        after = rest[close + 1 :]
        tolerated = False
        if after:
            if not _AFTER_BRACKET_PARAMS_RE.fullmatch(after):
                raise CPIMError(f"nothing may follow '>' in an address: {value!r}")
            uri += after
            tolerated = True
        if not _URI_RE.fullmatch(uri):
            raise CPIMError(f"not an absolute URI: {uri!r}")
        return cls(uri, formalName, tolerated)

    def toHeaderValue(self) -> str:
        """
        The canonical header value: C{<uri>}, C{Formal Name <uri>} when every
        word of the name is a CPIM token (RFC 3862 §3.6 C{1*(Token SP)}), else
        C{"Formal \\"name\\"" <uri>} with escapes (the quoted form followed by
        a space, as RFC 7702 writes it; L{parse} accepts it with or without).

        @raise ValueError: L{uri} is not an absolute URI.
        """
        if not _URI_RE.fullmatch(self.uri):
            raise ValueError(f"not an absolute URI: {self.uri!r}")
        if not self.formalName:
            return f"<{self.uri}>"
        if all(_TOKEN_RE.fullmatch(word) for word in self.formalName.split(" ")):
            return f"{self.formalName} <{self.uri}>"
        return f'"{escapeHeaderValue(self.formalName, quoted=True)}" <{self.uri}>'

    @property
    def bareURI(self) -> str:
        """
        L{uri} without URI parameters and headers (C{sip:room@host;gr=Nick}
        gives C{sip:room@host}).
        """
        return _splitURI(self.uri)[0]

    def uriParameters(self) -> tuple[tuple[str, str | None], ...]:
        """
        The URI parameters (after the host part), names lower-cased, values
        percent-decoded; L{None} for a parameter without C{=}.
        """
        return _splitURI(self.uri)[1]

    def uriParameter(self, name: str) -> str | None:
        """
        One URI parameter, e.g. C{uriParameter("gr")} of
        C{<sip:room@chat.example.org;gr=Romeo>} is C{"Romeo"} (RFC 7701/7702
        in-room address; RFC 5627 GRUU). Names compare case-insensitively.

        @return: the percent-decoded value, C{""} for a parameter without a
            value, or L{None} when absent.
        """
        wanted = name.lower()
        for paramName, value in self.uriParameters():
            if paramName == wanted:
                return "" if value is None else value
        return None

    @property
    def gruu(self) -> str | None:
        """
        The C{gr} URI parameter (the occupant nick in RFC 7702 addresses).
        """
        return self.uriParameter("gr")

    def withURIParameter(self, name: str, value: str) -> CPIMAddress:
        """
        A copy whose URI carries C{;name=value} (replacing a parameter of the
        same name), the value percent-encoded as a SIP C{paramchar} sequence,
        e.g. C{withURIParameter("gr", "Alice in Wonderland")} appends
        C{;gr=Alice%20in%20Wonderland}.
        """
        base, params, headers = _splitURI(self.uri)
        kept = [
            p if v is None else f"{p}={quote(v, safe=_URI_PARAM_SAFE)}"
            for p, v in params
            if p != name.lower()
        ]
        kept.append(f"{name}={quote(value, safe=_URI_PARAM_SAFE)}")
        uri = base + "".join(";" + p for p in kept) + headers
        return CPIMAddress(uri, self.formalName)


@dataclass(frozen=True, slots=True)
class CPIMSubject:
    """
    One C{Subject} header (RFC 3862 §4.5).

    @ivar text: the decoded subject.
    @ivar lang: the C{lang} parameter (RFC 3862 §3.3), or L{None}.
    """

    text: str
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class CPIMNamespace:
    """
    One C{NS} declaration (RFC 3862 §3.4, §4.6).

    @ivar uri: the namespace URI.
    @ivar prefix: the declared prefix, or L{None} for a new default namespace.
    """

    uri: str
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class CPIMHeader:
    """
    One CPIM metadata header line (RFC 3862 §2.2, §3.6).

    @ivar name: the header name as written, with its prefix
        (C{MyFeatures.VitalMessageOption}); case-sensitive.
    @ivar value: the value as written (escapes not decoded).
    @ivar parameters: the C{;name=value} parameters between the colon and the
        space (C{Subject:;lang=fr ...}), values as written.
    @ivar raw: the line's octets, without the CRLF.
    """

    name: str
    value: str
    parameters: tuple[tuple[str, str], ...]
    raw: bytes

    @classmethod
    def parse(cls, line: bytes) -> CPIMHeader:
        """
        Parse one header line (without its CRLF).

        @raise CPIMError: the line is not C{Name ":" *(";" Parameter) SP
            Value}, has a control character, leading or trailing whitespace,
            or is not UTF-8 (RFC 3862 §2.2, §3.6; R-170).
        """
        if len(line) > MAX_HEADER_LINE_LENGTH:
            raise CPIMError("header line too long")
        _checkNoControls(line)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise CPIMError("header line is not UTF-8") from None
        nameMatch = _HEADER_NAME_RE.match(text)
        if nameMatch is None:
            raise CPIMError(f"invalid header name (or leading whitespace): {text!r}")
        if text[nameMatch.end() : nameMatch.end() + 1] != ":":
            raise CPIMError(f"header name without a colon: {text!r}")
        pos = nameMatch.end() + 1
        parameters: list[tuple[str, str]] = []
        while text[pos : pos + 1] == ";":
            paramMatch = _NAME_RE.match(text, pos + 1)
            if paramMatch is None or not text.startswith("=", paramMatch.end()):
                raise CPIMError(f"invalid header parameter in {text!r}")
            valueStart = paramMatch.end() + 1
            if text[valueStart : valueStart + 1] == '"':
                valueEnd = _endOfQuotedString(text, valueStart) + 1
            else:
                tokenMatch = _TOKEN_RE.match(text, valueStart)
                if tokenMatch is None:
                    raise CPIMError(f"invalid header parameter value in {text!r}")
                valueEnd = tokenMatch.end()
            parameters.append((paramMatch.group(), text[valueStart:valueEnd]))
            pos = valueEnd
        if text[pos : pos + 1] != " ":
            raise CPIMError(
                f"header name and colon must be followed by one space: {text!r}"
            )
        value = text[pos + 1 :]
        if not value:
            raise CPIMError(f"empty header value: {text!r}")
        if value[0] in " \t" or value[-1] in " \t":
            raise CPIMError(f"whitespace around header value: {text!r}")
        return cls(nameMatch.group(), value, tuple(parameters), line)

    @classmethod
    def make(
        cls, name: str, value: str, parameters: Sequence[tuple[str, str]] = ()
    ) -> CPIMHeader:
        """
        A canonical header line from its parts (R-170).

        @param name: the header name, optionally prefixed.
        @param value: the value in wire form (use L{escapeHeaderValue} on
            free text first).
        @param parameters: C{(name, value)} pairs; a value that is not a
            token is written as a quoted string.
        @raise ValueError: the parts can't make a valid header line.
        """
        rendered = "".join(f";{p}={_parameterValue(v)}" for p, v in parameters)
        line = f"{name}:{rendered} {value}".encode("utf-8")
        try:
            header = cls.parse(line)
        except CPIMError as e:
            raise ValueError(e.reason) from None
        if header.name != name:
            raise ValueError(f"invalid header name {name!r}")
        return header

    @property
    def prefix(self) -> str | None:
        """
        The namespace prefix (the part before the C{.}), or L{None}.
        """
        prefix, dot, _ = self.name.rpartition(".")
        return prefix if dot else None

    @property
    def localName(self) -> str:
        """
        The name without its namespace prefix.
        """
        return self.name.rpartition(".")[2]

    @property
    def decodedValue(self) -> str:
        """
        The value with the RFC 3862 §2.3 escapes decoded.
        """
        return unescapeHeaderValue(self.value)

    def parameter(self, name: str) -> str | None:
        """
        The decoded value of a header parameter (C{lang}), or L{None}.
        """
        for paramName, value in self.parameters:
            if paramName == name:
                if value.startswith('"'):
                    return unescapeHeaderValue(value[1:-1])
                return value
        return None


@dataclass(frozen=True, slots=True)
class MIMEHeader:
    """
    One header of the encapsulated MIME object (RFC 3862 §2.4; RFC 2045).

    @ivar name: the name as written (MIME names are case-insensitive).
    @ivar value: the unfolded value, without surrounding whitespace.
    @ivar raw: the octets as written, without the final CRLF (a folded
        header keeps its inner CRLFs).
    """

    name: str
    value: str
    raw: bytes

    @classmethod
    def make(cls, name: str, value: str) -> MIMEHeader:
        """
        A canonical C{Name: value} line.

        @raise ValueError: invalid name, or a control character in C{value}.
        """
        if not _MIME_HEADER_NAME_RE.fullmatch(name.encode("ascii", "replace")):
            raise ValueError(f"invalid MIME header name {name!r}")
        if any(c < " " or c == "\x7f" for c in value) or value != value.strip():
            raise ValueError(f"invalid MIME header value {value!r}")
        return cls(name, value, f"{name}: {value}".encode("utf-8"))


@dataclass(frozen=True, slots=True)
class MediaType:
    """
    A parsed C{Content-Type} value (RFC 2045 §5.1).

    @ivar type: the lower-cased top-level type (C{text}).
    @ivar subtype: the lower-cased subtype (C{plain}).
    @ivar parameters: C{(name, value)} pairs, names lower-cased, values
        unquoted.
    """

    type: str
    subtype: str
    parameters: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, value: str) -> MediaType:
        """
        @param value: e.g. C{text/plain; charset=utf-8}.
        @raise CPIMError: not C{type/subtype *(; name=value)}.
        """
        match = _MEDIA_TYPE_RE.match(value)
        if match is None:
            raise CPIMError(f"invalid Content-Type: {value!r}")
        pos = match.end()
        parameters: list[tuple[str, str]] = []
        while pos < len(value):
            paramMatch = _MEDIA_PARAM_RE.match(value, pos)
            if paramMatch is None:
                raise CPIMError(f"invalid Content-Type parameters: {value!r}")
            token, quoted = paramMatch.group(2), paramMatch.group(3)
            paramValue = token if token is not None else re.sub(r"\\(.)", r"\1", quoted)
            parameters.append((paramMatch.group(1).lower(), paramValue))
            pos = paramMatch.end()
        return cls(match.group(1).lower(), match.group(2).lower(), tuple(parameters))

    @property
    def mimeType(self) -> str:
        """
        C{type/subtype}, lower-cased.
        """
        return f"{self.type}/{self.subtype}"

    def parameter(self, name: str) -> str | None:
        """
        A parameter's value (C{charset}), or L{None}; names case-insensitive.
        """
        for paramName, value in self.parameters:
            if paramName == name.lower():
                return value
        return None


def _parameterValue(value: str) -> str:
    if _TOKEN_RE.fullmatch(value):
        return value
    return '"' + escapeHeaderValue(value, quoted=True) + '"'


def _isHex4(text: str) -> bool:
    return len(text) == 4 and all(c in "0123456789abcdefABCDEF" for c in text)


def _combineSurrogates(text: str) -> str:
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _checkNoControls(line: bytes) -> None:
    for octet in line:
        if octet < 0x20 or octet == 0x7F:
            raise CPIMError(f"control character 0x{octet:02x} in header line")


def _endOfQuotedString(text: str, start: int) -> int:
    """
    @param start: index of the opening double quote.
    @return: index of the closing (unescaped) double quote.
    @raise CPIMError: unterminated.
    """
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i
        else:
            i += 1
    raise CPIMError(f"unterminated quoted string: {text!r}")


def _splitURI(uri: str) -> tuple[str, tuple[tuple[str, str | None], ...], str]:
    """
    Split C{uri} into the part before its parameters, its parameters (after
    the host part, so C{sip:+1;phone-context=x@host} keeps its user
    parameters) and the C{?headers} part.
    """
    question = uri.find("?")
    headers = uri[question:] if question >= 0 else ""
    main = uri[:question] if question >= 0 else uri
    at = main.rfind("@")
    start = at + 1 if at >= 0 else main.find(":") + 1
    semi = main.find(";", start)
    if semi < 0:
        return main, (), headers
    params: list[tuple[str, str | None]] = []
    for item in main[semi + 1 :].split(";"):
        if not item:
            continue
        name, eq, value = item.partition("=")
        params.append((name.lower(), unquote(value) if eq else None))
    return main[:semi], tuple(params), headers


def _parseNS(value: str) -> CPIMNamespace:
    match = _NS_VALUE_RE.fullmatch(value)
    if match is None or not _URI_RE.fullmatch(match.group(2)):
        raise CPIMError(f"invalid NS header value: {value!r}")
    return CPIMNamespace(match.group(2), match.group(1))


def _parseRequire(value: str) -> tuple[str, ...]:
    names = tuple(name.strip(" ") for name in value.split(","))
    for name in names:
        if not _HEADER_NAME_RE.fullmatch(name):
            raise CPIMError(f"invalid header name in Require: {name!r}")
    return names


def _parseDateTimeHeader(value: str) -> datetime:
    try:
        return parseDateTime(value)
    except ValueError as e:
        raise CPIMError(f"invalid DateTime: {e}") from None
