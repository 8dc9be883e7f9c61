# -*- test-case-name: tests.formats.test_cpim -*-
"""
RFC 3862 C{message/cpim}: parse and serialize the body of an MSRP SEND whose
C{Content-Type} is C{message/cpim} (the CPIM metadata headers, the
encapsulated MIME headers and the content).

Two ways to get a L{CPIMMessage}:

  - L{CPIMMessage.parse} keeps every header line's octets, so
    L{CPIMMessage.toBytes} reproduces the input exactly (RFC 3862 §2.2:
    processors MUST preserve all octets and MUST NOT reorder headers; R-171).
  - L{CPIMMessage.build} makes the canonical form (R-169, R-170): C{Name: value}
    with exactly one space, CRLF line ends, UTF-8, escapes instead of control
    characters (R-173), a blank line between the CPIM headers and the
    encapsulated MIME headers, GRUU parameters inside the angle brackets
    (R-172).

The parser is strict about malformed input (L{CPIMError}) but tolerates two
forms found in RFC 7701/7702 examples and in the wild: no blank line between
the CPIM headers and the encapsulated C{Content-Type} (R-169), and URI
parameters after the closing C{>} (C{To: <sip:room@host>;gr=Nick}, R-172),
which are folded into the URI. Unknown headers are ignored unless a
C{Require} header names them (L{CPIMRequireError}, MSRP 415; R-174).

Sans-IO: standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import ClassVar, Iterable, Iterator, Sequence
from urllib.parse import quote, unquote

#: RFC 3862 §4: the namespace of the core headers, and the default one.
CPIM_NAMESPACE = "urn:ietf:params:cpim-headers:"

#: The MSRP/MIME content type of a CPIM body.
CPIM_CONTENT_TYPE = "message/cpim"

#: Most header lines accepted in one header block (CPIM or MIME).
MAX_HEADER_COUNT = 64

#: Longest header line accepted, in octets (without its CRLF).
MAX_HEADER_LINE_LENGTH = 8192

#: Most octets accepted for both header blocks together.
MAX_HEADER_BYTES = 32768

#: Local names of the core headers (RFC 3862 §4.1-4.7).
CORE_HEADERS = frozenset({"From", "To", "cc", "DateTime", "Subject", "NS", "Require"})

_CRLF = b"\r\n"

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


@dataclass(frozen=True, slots=True)
class CPIMMessage:
    """
    A C{message/cpim} body (RFC 3862 §2): CPIM metadata headers, the
    encapsulated MIME headers and the content.

    Make one with L{parse} or L{build}; the properties (L{fromAddress},
    L{toAddresses}, ...) interpret L{headers} with their namespaces.

    @ivar headers: the CPIM metadata headers, in order.
    @ivar contentHeaders: the encapsulated MIME headers, in order (at least
        C{Content-Type}).
    @ivar body: the content octets.
    @ivar separated: whether a blank line separates the two header blocks
        (RFC 3862 §2; L{False} for the RFC 7701/7702 example form, R-169).
    """

    headers: tuple[CPIMHeader, ...]
    contentHeaders: tuple[MIMEHeader, ...]
    body: bytes
    separated: bool = True

    @classmethod
    def parse(
        cls, data: bytes, understood: Iterable[tuple[str, str]] = ()
    ) -> CPIMMessage:
        """
        Parse a C{message/cpim} body (what follows the MSRP/MIME
        C{Content-Type: message/cpim} header block).

        @param data: the whole body.
        @param understood: C{(namespace URI, local name)} of extension headers
            or features the caller implements, besides the core headers, for
            the C{Require} check.
        @raise CPIMRequireError: a C{Require} names something not understood.
        @raise CPIMError: the body is malformed.
        """
        cpimLines, pos = _readBlock(data, 0)
        contentIndex = next(
            (
                i
                for i, line in enumerate(cpimLines)
                if line.split(b":", 1)[0].lower().startswith(b"content-")
            ),
            None,
        )
        if contentIndex is not None:
            mimeLines = cpimLines[contentIndex:]
            cpimLines = cpimLines[:contentIndex]
            separated = False
        else:
            mimeLines, pos = _readBlock(data, pos)
            separated = True
        message = cls(
            tuple(CPIMHeader.parse(line) for line in cpimLines),
            _parseMIMEHeaders(mimeLines),
            data[pos:],
            separated,
        )
        message._validate()
        message._checkRequire(frozenset(understood))
        return message

    @classmethod
    def build(
        cls,
        *,
        contentType: str,
        body: bytes,
        fromAddress: CPIMAddress | None = None,
        toAddresses: Sequence[CPIMAddress] = (),
        ccAddresses: Sequence[CPIMAddress] = (),
        dateTime: datetime | None = None,
        subjects: Sequence[CPIMSubject] = (),
        namespaces: Sequence[CPIMNamespace] = (),
        required: Sequence[str] = (),
        extensionHeaders: Sequence[tuple[str, str]] = (),
        contentHeaders: Sequence[tuple[str, str]] = (),
    ) -> CPIMMessage:
        """
        A canonical message (R-169, R-170, R-172, R-173): headers in the order
        C{From}, C{To}, C{cc}, C{DateTime}, C{Subject}, C{NS}, C{Require},
        extension headers; a blank line; C{Content-Type} and the other
        content headers; a blank line; the body.

        @param contentType: the encapsulated C{Content-Type} value.
        @param body: the content octets.
        @param fromAddress: the sender (RFC 3862 §4.1).
        @param toAddresses: the recipients (RFC 7701 allows only one).
        @param ccAddresses: courtesy-copy recipients.
        @param dateTime: when sent (R-175); aware, written in its own offset.
        @param subjects: subjects, each with an optional language.
        @param namespaces: C{NS} declarations for the extension headers.
        @param required: header names for a C{Require} header.
        @param extensionHeaders: C{(name, text)} pairs; C{text} is escaped.
        @param contentHeaders: more C{(name, value)} MIME headers
            (C{Content-ID}).
        @raise ValueError: a value can't be written as a valid header.
        """
        headers: list[CPIMHeader] = []
        if fromAddress is not None:
            headers.append(CPIMHeader.make("From", fromAddress.toHeaderValue()))
        headers.extend(CPIMHeader.make("To", a.toHeaderValue()) for a in toAddresses)
        headers.extend(CPIMHeader.make("cc", a.toHeaderValue()) for a in ccAddresses)
        if dateTime is not None:
            headers.append(CPIMHeader.make("DateTime", formatDateTime(dateTime)))
        for subject in subjects:
            params = () if subject.lang is None else (("lang", subject.lang),)
            text = escapeHeaderValue(subject.text)
            headers.append(CPIMHeader.make("Subject", text, params))
        for ns in namespaces:
            if not _URI_RE.fullmatch(ns.uri):
                raise ValueError(f"not an absolute URI: {ns.uri!r}")
            prefix = "" if ns.prefix is None else ns.prefix + " "
            headers.append(CPIMHeader.make("NS", f"{prefix}<{ns.uri}>"))
        if required:
            headers.append(CPIMHeader.make("Require", ",".join(required)))
        headers.extend(
            CPIMHeader.make(name, escapeHeaderValue(value))
            for name, value in extensionHeaders
        )
        mime = [MIMEHeader.make("Content-Type", contentType)]
        mime.extend(MIMEHeader.make(name, value) for name, value in contentHeaders)
        message = cls(tuple(headers), tuple(mime), body, True)
        try:
            message._validate()
        except CPIMError as e:
            raise ValueError(e.reason) from None
        return message

    def toBytes(self) -> bytes:
        """
        The body octets: a parsed message exactly as received, a built one in
        canonical form.
        """
        parts = [h.raw + _CRLF for h in self.headers]
        if self.separated:
            parts.append(_CRLF)
        parts.extend(h.raw + _CRLF for h in self.contentHeaders)
        parts.append(_CRLF)
        parts.append(self.body)
        return b"".join(parts)

    def resolvedHeaders(self) -> Iterator[tuple[str, str, CPIMHeader]]:
        """
        Each header with the namespace its name belongs to (RFC 3862 §3.4:
        prefix declared by an earlier C{NS}, else the current default
        namespace, initially L{CPIM_NAMESPACE}).

        @return: C{(namespace URI, local name, header)} triples, in order.
        @raise CPIMError: a prefix is used before it is declared.
        """
        prefixes: dict[str, str] = {}
        default = CPIM_NAMESPACE
        for header in self.headers:
            namespace = _resolvePrefix(header.prefix, prefixes, default)
            if namespace is None:
                raise CPIMError(f"undeclared namespace prefix in {header.name!r}")
            local = header.localName
            yield namespace, local, header
            if namespace == CPIM_NAMESPACE and local == "NS":
                declared = _parseNS(header.value)
                if declared.prefix is None:
                    default = declared.uri
                else:
                    prefixes[declared.prefix] = declared.uri

    def headersNamed(self, namespace: str, name: str) -> tuple[CPIMHeader, ...]:
        """
        The headers whose resolved name is C{(namespace, name)}, e.g.
        C{headersNamed("mid:MessageFeatures@id.foo.com", "WackyMessageOption")}.
        """
        return tuple(
            h
            for ns, local, h in self.resolvedHeaders()
            if (ns, local) == (namespace, name)
        )

    def _core(self, name: str) -> tuple[CPIMHeader, ...]:
        return self.headersNamed(CPIM_NAMESPACE, name)

    @property
    def fromAddress(self) -> CPIMAddress | None:
        """
        The C{From} address (RFC 3862 §4.1), or L{None}.
        """
        found = self._core("From")
        return CPIMAddress.parse(found[0].value) if found else None

    @property
    def toAddresses(self) -> tuple[CPIMAddress, ...]:
        """
        The C{To} addresses (RFC 3862 §4.2), in order.
        """
        return tuple(CPIMAddress.parse(h.value) for h in self._core("To"))

    @property
    def ccAddresses(self) -> tuple[CPIMAddress, ...]:
        """
        The C{cc} addresses (RFC 3862 §4.3), in order.
        """
        return tuple(CPIMAddress.parse(h.value) for h in self._core("cc"))

    @property
    def dateTime(self) -> datetime | None:
        """
        The C{DateTime} (RFC 3862 §4.4), aware, in the offset as written; or
        L{None}.
        """
        found = self._core("DateTime")
        return _parseDateTimeHeader(found[0].value) if found else None

    @property
    def subjects(self) -> tuple[CPIMSubject, ...]:
        """
        The C{Subject} headers (RFC 3862 §4.5), decoded, in order.
        """
        return tuple(
            CPIMSubject(h.decodedValue, h.parameter("lang"))
            for h in self._core("Subject")
        )

    @property
    def namespaces(self) -> tuple[CPIMNamespace, ...]:
        """
        The C{NS} declarations (RFC 3862 §4.6), in order.
        """
        return tuple(_parseNS(h.value) for h in self._core("NS"))

    @property
    def required(self) -> tuple[str, ...]:
        """
        The names listed by C{Require} headers (RFC 3862 §4.7), as written.
        """
        return tuple(
            name for h in self._core("Require") for name in _parseRequire(h.value)
        )

    @property
    def contentType(self) -> MediaType:
        """
        The encapsulated C{Content-Type} (RFC 3862 §2.4).
        """
        value = self.contentHeader("Content-Type")
        if value is None:
            raise CPIMError("no Content-Type in the encapsulated MIME headers")
        return MediaType.parse(value)

    def contentHeader(self, name: str) -> str | None:
        """
        The value of the first encapsulated MIME header called C{name}
        (case-insensitive, e.g. C{Content-ID}), or L{None}.
        """
        for header in self.contentHeaders:
            if header.name.lower() == name.lower():
                return header.value
        return None

    def _validate(self) -> None:
        """
        Check every core header's value, that C{From} and C{DateTime} occur at
        most once, that prefixes are declared before use, and that the
        content headers have exactly one valid C{Content-Type}.

        @raise CPIMError: they don't.
        """
        counts: dict[str, int] = {}
        for namespace, local, header in self.resolvedHeaders():
            if namespace != CPIM_NAMESPACE or local not in CORE_HEADERS:
                continue
            counts[local] = counts.get(local, 0) + 1
            if local in ("From", "To", "cc"):
                CPIMAddress.parse(header.value)
            elif local == "DateTime":
                _parseDateTimeHeader(header.value)
            elif local == "NS":
                _parseNS(header.value)
            elif local == "Require":
                _parseRequire(header.value)
        for single in ("From", "DateTime"):
            if counts.get(single, 0) > 1:
                raise CPIMError(f"more than one {single} header")
        contentTypes = [
            h for h in self.contentHeaders if h.name.lower() == "content-type"
        ]
        if len(contentTypes) != 1:
            raise CPIMError(
                "the encapsulated MIME headers need exactly one Content-Type"
            )
        MediaType.parse(contentTypes[0].value)

    def _checkRequire(self, understood: frozenset[tuple[str, str]]) -> None:
        """
        RFC 3862 §3.5, §4.7: every name a C{Require} lists must be a core
        header or in C{understood}; names are resolved with the declarations
        in effect at the C{Require} header.

        @raise CPIMRequireError: some aren't.
        """
        prefixes: dict[str, str] = {}
        default = CPIM_NAMESPACE
        unsupported: list[str] = []
        for namespace, local, header in self.resolvedHeaders():
            if namespace != CPIM_NAMESPACE:
                continue
            if local == "NS":
                declared = _parseNS(header.value)
                if declared.prefix is None:
                    default = declared.uri
                else:
                    prefixes[declared.prefix] = declared.uri
            elif local == "Require":
                for name in _parseRequire(header.value):
                    prefix, dot, requiredLocal = name.rpartition(".")
                    ns = _resolvePrefix(prefix if dot else None, prefixes, default)
                    key = (ns or "", requiredLocal)
                    isCore = ns == CPIM_NAMESPACE and requiredLocal in CORE_HEADERS
                    if ns is None or not (isCore or key in understood):
                        unsupported.append(name)
        if unsupported:
            raise CPIMRequireError(unsupported)


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


def _resolvePrefix(
    prefix: str | None, prefixes: dict[str, str], default: str
) -> str | None:
    if prefix is None:
        return default
    return prefixes.get(prefix)


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


def _readBlock(data: bytes, pos: int) -> tuple[list[bytes], int]:
    """
    Read header lines from C{pos} up to an empty line.

    @return: the lines (without CRLF) and the position after the empty line.
    @raise CPIMError: no empty line, or a bound exceeded.
    """
    lines: list[bytes] = []
    while True:
        end = data.find(_CRLF, pos, pos + MAX_HEADER_LINE_LENGTH + 2)
        if end < 0:
            if len(data) - pos > MAX_HEADER_LINE_LENGTH:
                raise CPIMError("header line too long")
            raise CPIMError("header block not terminated by an empty line")
        line = data[pos:end]
        pos = end + 2
        if not line:
            return lines, pos
        lines.append(line)
        if len(lines) > MAX_HEADER_COUNT:
            raise CPIMError("too many header lines")
        if pos > MAX_HEADER_BYTES:
            raise CPIMError("header section too long")


def _parseMIMEHeaders(lines: list[bytes]) -> tuple[MIMEHeader, ...]:
    """
    Parse the encapsulated MIME header lines, joining folded ones (RFC 5322
    §2.2.3).

    @raise CPIMError: malformed, or no headers at all.
    """
    if not lines:
        raise CPIMError("no encapsulated MIME headers (Content-Type is required)")
    groups: list[list[bytes]] = []
    for line in lines:
        for octet in line:
            if (octet < 0x20 and octet != 0x09) or octet == 0x7F:
                raise CPIMError(f"control character 0x{octet:02x} in MIME header")
        if line[:1] in (b" ", b"\t"):
            if not groups:
                raise CPIMError("MIME header block starts with a continuation line")
            groups[-1].append(line)
        else:
            groups.append([line])
    headers: list[MIMEHeader] = []
    for group in groups:
        raw = _CRLF.join(group)
        name, colon, rest = group[0].partition(b":")
        if not colon:
            raise CPIMError(f"MIME header line without a colon: {group[0]!r}")
        if not _MIME_HEADER_NAME_RE.fullmatch(name):
            raise CPIMError(f"invalid MIME header name: {name!r}")
        try:
            value = b"".join([rest, *group[1:]]).decode("utf-8").strip(" \t")
        except UnicodeDecodeError:
            raise CPIMError("MIME header is not UTF-8") from None
        headers.append(MIMEHeader(name.decode("ascii"), value, raw))
    return tuple(headers)
