# -*- test-case-name: tests.msrp.test_uri -*-
"""
MSRP URIs: parsing, serialization and comparison.

Implements the C{MSRP-URI} rule of RFC 4975 section 9 with the constraints
of section 6 (R-150) and the comparison rules of section 6.1 (R-151)::

    MSRP-URI = msrp-scheme "://" authority
               ["/" session-id] ";" transport *( ";" URI-parameter)
    msrp-scheme = "msrp" / "msrps"
    session-id = 1*( unreserved / "+" / "=" / "/" )
    transport = "tcp" / 1*ALPHANUM
    URI-parameter = token ["=" token]

The authority is the RFC 3986 one (C{[userinfo "@"] host [":" port]}); it
ends at the first C{"/"} or C{";"}.

Equality (C{==}) and hashing of L{MSRPURI} follow RFC 4975 section 6.1, so
URIs can be used directly as dictionary keys for session lookup.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Iterable

from stoxgw.formats import hostport
from stoxgw.formats.hostport import HostPortError, checkHost, splitHostPort

__all__ = [
    "MSRPURIError",
    "MSRPURI",
    "parsePath",
    "serializePath",
]


class MSRPURIError(ValueError):
    """
    Some text is not a valid MSRP URI (or MSRP URI list).

    @ivar reason: A human-readable explanation of what is wrong.
    @ivar text: The offending text.
    """

    def __init__(self, reason: str, text: str = "") -> None:
        super().__init__(reason, text)
        self.reason = reason
        self.text = text

    def __str__(self) -> str:
        return f"{self.reason}: {self.text!r}"


_SCHEMES = frozenset({"msrp", "msrps"})

# RFC 3986 character classes (";" is excluded from reg-name and userinfo
# because it terminates the authority of an MSRP URI).
_PCT = r"%[0-9A-Fa-f]{2}"
_USERINFO_RE = re.compile(rf"(?:[A-Za-z0-9\-._~!$&'()*+,=]|{_PCT})*\Z")
_REGNAME_RE = re.compile(rf"(?:[A-Za-z0-9\-._~!$&'()*+,=]|{_PCT})+\Z")
_PORT_RE = re.compile(r"[0-9]{1,5}\Z")
_SESSION_ID_RE = re.compile(r"[A-Za-z0-9\-._~+=/]+\Z")
_TRANSPORT_RE = re.compile(r"[A-Za-z0-9]+\Z")
# RFC 4975 section 9 "token".
_TOKEN_RE = re.compile(r"[!#-'*+\-.0-9A-Z^-~]+\Z")
_URI_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://"
    r"(?P<authority>[^/;]*)"
    r"(?:/(?P<session>[^;]*))?"
    r"(?P<params>(?:;[^;]*)*)\Z"
)
_PCT_ANY_RE = re.compile(r"%([0-9A-Fa-f]{2})")
#: The words of L{splitHostPort}'s and L{checkHost}'s errors in MSRP URIs.
_HOST_REASONS = {
    hostport.UNCLOSED: "unterminated IPv6 literal",
    hostport.AFTER_BRACKET: "malformed authority",
    hostport.NOT_IPV6: "invalid IPv6 address",
    hostport.EMPTY: "missing host",
    hostport.BAD_IPV6: "invalid IPv6 address",
    hostport.BAD_IPV4: "invalid IPv4 address",
    hostport.BAD_NAME: "invalid host",
}
_UNRESERVED = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)


def _decodeUnreserved(match: re.Match[str]) -> str:
    """
    Percent-decode one escape if it encodes an unreserved character.

    @param match: A match of C{%XX}.
    @return: The decoded character, or the escape with upper-case hex digits.
    """
    char = chr(int(match.group(1), 16))
    if char in _UNRESERVED:
        return char
    return match.group(0).upper()


def _normalizeName(host: str) -> str:
    """
    Normalize a host name for comparison (RFC 4975 section 6.1, rule 2):
    case-insensitive after decoding percent-encoded unreserved characters.
    (IP addresses compare by address: see L{MSRPURI.__post_init__}.)

    @param host: A reg-name host as written.
    @return: A normalized form.
    """
    if "%" in host:
        host = _PCT_ANY_RE.sub(_decodeUnreserved, host)
    return host.lower()


@dataclass(frozen=True, slots=True, eq=False)
class MSRPURI:
    """
    An MSRP or MSRPS URI (RFC 4975 section 6).

    Components are kept as written (case included); comparison and hashing
    follow RFC 4975 section 6.1: the scheme and the transport compare
    case-insensitively, userinfo and other URI parameters are ignored, an
    explicit port never equals an absent one, the session-id is
    case-sensitive, and hosts compare case-insensitively (IP addresses by
    address) after percent-decoding of unreserved characters.  The
    normalized components (L{comparisonKey}) are computed once, when the
    URI is made and its host checked, and kept: sessions and send queues
    are looked up by URI for every chunk.

    @ivar scheme: C{"msrp"} or C{"msrps"} (any case).
    @ivar host: A host name, IPv4 address, or IPv6 address without brackets.
    @ivar port: The explicit port, or L{None}.
    @ivar sessionID: The session-id path segment, or L{None} for a URI that
        names an MSRP host device rather than a session.
    @ivar transport: The transport parameter, normally C{"tcp"}.
    @ivar userinfo: The userinfo part (never a password), or L{None}.
    @ivar parameters: Further URI parameters after the transport, as
        C{(name, value)} pairs (value L{None} when there is no C{"="}).
    """

    scheme: str
    host: str
    port: int | None
    sessionID: str | None
    transport: str = "tcp"
    userinfo: str | None = None
    parameters: tuple[tuple[str, str | None], ...] = ()
    _key: tuple[str, str, int | None, str | None, str] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        """
        Validate the components (R-150) and compute the comparison key.

        @raise MSRPURIError: If a component is invalid.
        """
        text = self.serialize()
        if not text.isascii():
            raise MSRPURIError("MSRP URIs must be US-ASCII", text)
        if self.scheme.lower() not in _SCHEMES:
            raise MSRPURIError("scheme must be msrp or msrps", text)
        if self.userinfo is not None:
            if ":" in self.userinfo:
                raise MSRPURIError("userinfo must not contain a password", text)
            if not _USERINFO_RE.match(self.userinfo):
                raise MSRPURIError("invalid userinfo", text)
        try:
            # The address in its compressed form if the host is one (RFC
            # 4975 section 6.1 compares addresses by equivalence).
            normalized = checkHost(self.host, _REGNAME_RE, True)
        except HostPortError as e:
            raise MSRPURIError(_HOST_REASONS[e.reason], text) from None
        numeric = normalized is not None
        if self.port is not None and not 0 <= self.port <= 65535:
            raise MSRPURIError("port out of range", text)
        if numeric and self.port is None:
            raise MSRPURIError("a numeric IP address requires a port", text)
        if self.sessionID is not None and not _SESSION_ID_RE.match(self.sessionID):
            raise MSRPURIError("invalid session-id", text)
        if not _TRANSPORT_RE.match(self.transport):
            raise MSRPURIError("invalid transport parameter", text)
        for name, value in self.parameters:
            if not _TOKEN_RE.match(name) or (
                value is not None and not _TOKEN_RE.match(value)
            ):
                raise MSRPURIError("invalid URI parameter", text)
        key = (
            self.scheme.lower(),
            _normalizeName(self.host) if normalized is None else normalized,
            self.port,
            self.sessionID,
            self.transport.lower(),
        )
        object.__setattr__(self, "_key", key)

    @classmethod
    def fromString(cls, text: str) -> MSRPURI:
        """
        Parse an MSRP URI.

        @param text: The URI, e.g. C{"msrp://host.example.com:8493/asfd34;tcp"}.
        @return: The parsed URI.
        @raise MSRPURIError: If C{text} is not a valid MSRP URI (R-150).
        """
        if not text.isascii():
            raise MSRPURIError("MSRP URIs must be US-ASCII", text)
        match = _URI_RE.match(text)
        if match is None:
            raise MSRPURIError("malformed MSRP URI", text)
        authority = match.group("authority")
        userinfo: str | None = None
        if "@" in authority:
            userinfo, _, authority = authority.rpartition("@")
        try:
            # The port after the last ":" (see splitHostPort).
            host, portText = splitHostPort(authority, True)
        except HostPortError as e:
            raise MSRPURIError(_HOST_REASONS[e.reason], text) from None
        port: int | None = None
        if portText is not None:
            if not _PORT_RE.match(portText):
                raise MSRPURIError("invalid port", text)
            port = int(portText)
        session = match.group("session")
        if session is not None and not session:
            raise MSRPURIError("empty session-id", text)
        params = match.group("params").split(";")[1:]
        if not params or not params[0]:
            raise MSRPURIError("missing transport parameter", text)
        transport = params[0]
        parameters: list[tuple[str, str | None]] = []
        for param in params[1:]:
            name, equals, value = param.partition("=")
            parameters.append((name, value if equals else None))
        return cls(
            scheme=match.group("scheme"),
            host=host,
            port=port,
            sessionID=session,
            transport=transport,
            userinfo=userinfo,
            parameters=tuple(parameters),
        )

    def serialize(self) -> str:
        """
        Serialize this URI.

        @return: The URI text.
        """
        parts = [self.scheme, "://"]
        if self.userinfo is not None:
            parts += [self.userinfo, "@"]
        if ":" in self.host:
            parts += ["[", self.host, "]"]
        else:
            parts.append(self.host)
        if self.port is not None:
            parts += [":", str(self.port)]
        if self.sessionID is not None:
            parts += ["/", self.sessionID]
        parts += [";", self.transport]
        for name, value in self.parameters:
            parts += [";", name]
            if value is not None:
                parts += ["=", value]
        return "".join(parts)

    def __str__(self) -> str:
        return self.serialize()

    @property
    def secure(self) -> bool:
        """
        Whether the connection for this URI must use TLS (C{msrps}, R-150).
        """
        return self.scheme.lower() == "msrps"

    @property
    def numericHost(self) -> bool:
        """
        Whether the host is an IPv4 or IPv6 address rather than a name.
        """
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def comparisonKey(
        self,
    ) -> tuple[str, str, int | None, str | None, str]:
        """
        The components that RFC 4975 section 6.1 compares, normalized
        (computed when the URI was made).

        @return: C{(scheme, host, port, sessionID, transport)}.
        """
        return self._key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MSRPURI):
            return NotImplemented
        return self._key == other._key

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, MSRPURI):
            return NotImplemented
        return self._key != other._key

    def __hash__(self) -> int:
        return hash(self._key)


def parsePath(text: str) -> tuple[MSRPURI, ...]:
    """
    Parse a space-separated list of MSRP URIs (the value of To-Path,
    From-Path or Use-Path; RFC 4975 section 9, RFC 4976).

    @param text: The header value.
    @return: The URIs, leftmost first.
    @raise MSRPURIError: If the list is empty or contains an invalid URI.
    """
    parts = text.split()
    if not parts:
        raise MSRPURIError("empty URI list", text)
    return tuple(MSRPURI.fromString(part) for part in parts)


def serializePath(uris: Iterable[MSRPURI]) -> str:
    """
    Serialize a list of MSRP URIs as a header value.

    @param uris: The URIs, leftmost first.
    @return: The URIs separated by single spaces.
    """
    return " ".join(uri.serialize() for uri in uris)
