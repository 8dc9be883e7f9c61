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

The header fields and their grammar are in L{stoxgw.formats.cpimheaders};
this module reads and builds whole messages (the two header blocks and the
content) and exports the public names of both.

Sans-IO: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Iterable, Iterator, Sequence

from stoxgw.formats.cpimheaders import (
    MAX_HEADER_LINE_LENGTH,
    _MIME_HEADER_NAME_RE,
    _URI_RE,
    CPIMAddress,
    CPIMError,
    CPIMHeader,
    CPIMNamespace,
    CPIMRequireError,
    CPIMSubject,
    MIMEHeader,
    MediaType,
    _parseDateTimeHeader,
    _parseNS,
    _parseRequire,
    escapeHeaderValue,
    formatDateTime,
    parseDateTime,
    unescapeHeaderValue,
)

__all__ = [
    "CORE_HEADERS",
    "CPIM_CONTENT_TYPE",
    "CPIM_NAMESPACE",
    "MAX_HEADER_BYTES",
    "MAX_HEADER_COUNT",
    "MAX_HEADER_LINE_LENGTH",
    "CPIMAddress",
    "CPIMError",
    "CPIMHeader",
    "CPIMMessage",
    "CPIMNamespace",
    "CPIMRequireError",
    "CPIMSubject",
    "MIMEHeader",
    "MediaType",
    "escapeHeaderValue",
    "formatDateTime",
    "parseDateTime",
    "unescapeHeaderValue",
]

#: RFC 3862 §4: the namespace of the core headers, and the default one.
CPIM_NAMESPACE = "urn:ietf:params:cpim-headers:"

#: The MSRP/MIME content type of a CPIM body.
CPIM_CONTENT_TYPE = "message/cpim"

#: Most header lines accepted in one header block (CPIM or MIME).
MAX_HEADER_COUNT = 64

#: Most octets accepted for both header blocks together.
MAX_HEADER_BYTES = 32768

#: Local names of the core headers (RFC 3862 §4.1-4.7).
CORE_HEADERS = frozenset({"From", "To", "cc", "DateTime", "Subject", "NS", "Require"})

_CRLF = b"\r\n"



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
        # From, To, cc and DateTime come from typed values whose canonical
        # form is valid by construction (CPIMAddress.toHeaderValue checks
        # the URI): made without parsing them again, and counted but not
        # re-parsed by _validate.  The other headers carry caller text.
        headers: list[CPIMHeader] = []
        if fromAddress is not None:
            headers.append(_typedHeader("From", fromAddress.toHeaderValue()))
        headers.extend(_typedHeader("To", a.toHeaderValue()) for a in toAddresses)
        headers.extend(_typedHeader("cc", a.toHeaderValue()) for a in ccAddresses)
        if dateTime is not None:
            headers.append(_typedHeader("DateTime", formatDateTime(dateTime)))
        typed = len(headers)
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
            message._validate(typed)
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

    def _validate(self, typed: int = 0) -> None:
        """
        Check every core header's value, that C{From} and C{DateTime} occur at
        most once, that prefixes are declared before use, and that the
        content headers have exactly one valid C{Content-Type}.

        @param typed: how many leading headers L{build} wrote from typed
            values (valid by construction): counted, their values not
            parsed again.
        @raise CPIMError: they don't.
        """
        counts: dict[str, int] = {}
        resolved = self.resolvedHeaders()
        if typed:
            for _, local, _ in islice(resolved, typed):
                counts[local] = counts.get(local, 0) + 1
        for namespace, local, header in resolved:
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




def _typedHeader(name: str, value: str) -> CPIMHeader:
    """
    A core header line whose value L{CPIMMessage.build} formatted from a
    typed value (an address or a DateTime): C{Name: value} without the
    parse L{CPIMHeader.make} does, as the value has no control character,
    no surrounding whitespace and no parameters.

    @raise ValueError: the line is too long, or not encodable (a lone
        surrogate in a formal name).
    """
    line = f"{name}: {value}".encode("utf-8")
    if len(line) > MAX_HEADER_LINE_LENGTH:
        raise ValueError("header line too long")
    return CPIMHeader(name, value, (), line)


def _resolvePrefix(
    prefix: str | None, prefixes: dict[str, str], default: str
) -> str | None:
    if prefix is None:
        return default
    return prefixes.get(prefix)


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
