# -*- test-case-name: tests.sip.test_sdp -*-
"""
SDP (RFC 8866, formerly RFC 4566) parsing and serialization, and the
offer/answer helpers that know nothing of the media (RFC 3264: a refused
stream, the o= line of an update).  The MSRP media profile and its
offer/answer are in L{stoxgw.sip.msrpmedia}.

A L{SessionDescription} keeps every line: known ones as fields, attributes
as ordered L{Attribute}s, unknown line types in C{otherLines} (written back
after the known lines of their section).  Input may use CRLF or LF line
ends; output always uses CRLF.

Pure, sans-IO, standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum
from typing import Iterable

__all__ = [
    "SDPError",
    "SDPNegotiationError",
    "Origin",
    "Connection",
    "Timing",
    "Attribute",
    "MediaDescription",
    "SessionDescription",
    "Direction",
    "parseSDP",
    "parseNumber",
    "rejectMedia",
    "updateOrigin",
]


class SDPError(ValueError):
    """
    A session description is malformed.

    @ivar reason: What is wrong.
    @ivar status: The SIP status for a request carrying it (400).
    """

    status = 400

    def __init__(self, reason: str, line: str = "") -> None:
        super().__init__(reason, line)
        self.reason = reason
        self.line = line

    def __str__(self) -> str:
        return f"{self.reason}: {self.line!r}" if self.line else self.reason


class SDPNegotiationError(SDPError):
    """
    An offer is valid but cannot be accepted: no acceptable stream
    (RFC 3264 section 6; RFC 4975 section 8.6 / R-158: answer 488).
    """

    status = 488


_LINE_RE = re.compile(r"([a-z])=(.*)\Z")


#: RFC 8866 section 9 C{1*DIGIT}, bounded to 20 digits (64 bits, the
#: largest number SDP needs): ASCII only, unlike C{str.isdigit}.
_NUMBER_RE = re.compile(r"[0-9]{1,20}\Z")


def parseNumber(text: str) -> int | None:
    """
    The value of a decimal field (RFC 8866 section 9), or L{None} if it
    is not one.
    """
    return int(text) if _NUMBER_RE.match(text) else None


@dataclass(frozen=True, slots=True)
class Origin:
    """
    The C{o=} line (RFC 8866 section 5.2).

    @ivar username: Often C{-}.
    @ivar sessionID: Numeric string.
    @ivar sessionVersion: Incremented on each change (RFC 3264 section 8).
    """

    username: str
    sessionID: str
    sessionVersion: int
    netType: str = "IN"
    addrType: str = "IP4"
    address: str = "0.0.0.0"

    @classmethod
    def parse(cls, value: str) -> Origin:
        """
        @raise SDPError: Not six fields or a non-numeric version.
        """
        parts = value.split(" ")
        version = parseNumber(parts[2]) if len(parts) == 6 else None
        if version is None:
            raise SDPError("Malformed o= line", value)
        return cls(parts[0], parts[1], version, parts[3], parts[4], parts[5])

    def serialize(self) -> str:
        """
        The line value.
        """
        return (
            f"{self.username} {self.sessionID} {self.sessionVersion} "
            f"{self.netType} {self.addrType} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """
    A C{c=} line (RFC 8866 section 5.7).
    """

    address: str
    netType: str = "IN"
    addrType: str = "IP4"

    @classmethod
    def parse(cls, value: str) -> Connection:
        """
        @raise SDPError: Not three fields.
        """
        parts = value.split(" ")
        if len(parts) != 3 or not all(parts):
            raise SDPError("Malformed c= line", value)
        return cls(parts[2], parts[0], parts[1])

    def serialize(self) -> str:
        """
        The line value.
        """
        return f"{self.netType} {self.addrType} {self.address}"


@dataclass(frozen=True, slots=True)
class Timing:
    """
    A C{t=} line and its C{r=} lines.
    """

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Attribute:
    """
    An C{a=} line: C{name} or C{name:value} (RFC 8866 section 5.13).
    """

    name: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> Attribute:
        """
        @raise SDPError: Empty name.
        """
        name, colon, value = text.partition(":")
        if not name:
            raise SDPError("Malformed a= line", text)
        return cls(name, value if colon else None)

    def serialize(self) -> str:
        """
        The line value.
        """
        return self.name if self.value is None else f"{self.name}:{self.value}"


def _attr(attributes: Iterable[Attribute], name: str) -> Attribute | None:
    for attribute in attributes:
        if attribute.name == name:
            return attribute
    return None


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """
    An C{m=} section.

    @ivar media: C{message}, C{audio}...
    @ivar port: Port (0 = stream rejected or disabled).
    @ivar proto: C{TCP/MSRP}, C{RTP/AVP}...
    @ivar formats: Format list (C{*} for MSRP).
    @ivar portCount: The C{/<number of ports>} suffix, if any.
    """

    media: str
    port: int
    proto: str
    formats: tuple[str, ...] = ()
    portCount: int | None = None
    information: str | None = None
    connections: tuple[Connection, ...] = ()
    bandwidths: tuple[str, ...] = ()
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()
    otherLines: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parseMLine(cls, value: str) -> MediaDescription:
        """
        Parse the value of an C{m=} line.

        @raise SDPError: Malformed.
        """
        parts = value.split(" ")
        if len(parts) < 3 or not all(parts[:3]):
            raise SDPError("Malformed m= line", value)
        portText, slash, countText = parts[1].partition("/")
        port = parseNumber(portText)
        if port is None or port > 65535:
            raise SDPError("Invalid m= port", value)
        count = parseNumber(countText) if slash else None
        if slash and count is None:
            raise SDPError("Invalid m= port count", value)
        return cls(
            media=parts[0],
            port=port,
            proto=parts[2],
            formats=tuple(parts[3:]),
            portCount=count,
        )

    def attribute(self, name: str) -> str | None:
        """
        The value of the first C{a=name} (C{""} for a flag), or L{None}.
        """
        attribute = _attr(self.attributes, name)
        if attribute is None:
            return None
        return "" if attribute.value is None else attribute.value

    def attributeValues(self, name: str) -> list[str]:
        """
        The values of every C{a=name}.
        """
        return [a.value or "" for a in self.attributes if a.name == name]

    def hasAttribute(self, name: str) -> bool:
        """
        Whether an C{a=name} line is present.
        """
        return _attr(self.attributes, name) is not None

    def mLine(self) -> str:
        """
        The C{m=} line value.
        """
        port = str(self.port)
        if self.portCount is not None:
            port += f"/{self.portCount}"
        return " ".join([self.media, port, self.proto, *self.formats])

    def lines(self) -> list[str]:
        """
        The section's lines, without line ends.
        """
        out = [f"m={self.mLine()}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        out.extend(f"c={c.serialize()}" for c in self.connections)
        out.extend(f"b={b}" for b in self.bandwidths)
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(f"a={a.serialize()}" for a in self.attributes)
        out.extend(f"{kind}={value}" for kind, value in self.otherLines)
        return out


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """
    A whole session description (RFC 8866 section 5).
    """

    origin: Origin
    sessionName: str = "-"
    timings: tuple[Timing, ...] = (Timing(),)
    media: tuple[MediaDescription, ...] = ()
    information: str | None = None
    uri: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    connection: Connection | None = None
    bandwidths: tuple[str, ...] = ()
    zoneAdjustments: str | None = None
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()
    otherLines: tuple[tuple[str, str], ...] = ()
    version: int = 0

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """
        See L{parseSDP}.
        """
        return parseSDP(data)

    def serialize(self) -> bytes:
        """
        The description with CRLF line ends (UTF-8).
        """
        out = [f"v={self.version}", f"o={self.origin.serialize()}"]
        out.append(f"s={self.sessionName}")
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.uri is not None:
            out.append(f"u={self.uri}")
        out.extend(f"e={e}" for e in self.emails)
        out.extend(f"p={p}" for p in self.phones)
        if self.connection is not None:
            out.append(f"c={self.connection.serialize()}")
        out.extend(f"b={b}" for b in self.bandwidths)
        for timing in self.timings:
            out.append(f"t={timing.start} {timing.stop}")
            out.extend(f"r={r}" for r in timing.repeats)
        if self.zoneAdjustments is not None:
            out.append(f"z={self.zoneAdjustments}")
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(f"a={a.serialize()}" for a in self.attributes)
        out.extend(f"{kind}={value}" for kind, value in self.otherLines)
        for media in self.media:
            out.extend(media.lines())
        return ("\r\n".join(out) + "\r\n").encode("utf-8")

    def connectionFor(self, media: MediaDescription) -> Connection | None:
        """
        The connection data applying to C{media}: its own first C{c=} line,
        else the session-level one.
        """
        if media.connections:
            return media.connections[0]
        return self.connection


#: Session-level line types, in their RFC 8866 section 5 order, after v/o/s.
_SESSION_ORDER = "iuepcbtrzka"


def parseSDP(data: bytes | str) -> SessionDescription:
    """
    Parse a session description.

    Strict on what makes SDP SDP: the first lines are C{v=0}, C{o=} and
    C{s=} in this order, at least one C{t=} precedes the first C{m=}, every
    line is C{<letter>=<value>}.  Lenient on the order of the other
    session-level lines and on unknown line types (kept).

    @raise SDPError: Malformed.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = text.split("\n")
    if lines and lines[-1] in ("", "\r"):
        lines.pop()
    parsed: list[tuple[str, str]] = []
    for raw in lines:
        line = raw[:-1] if raw.endswith("\r") else raw
        match = _LINE_RE.match(line)
        if match is None:
            raise SDPError("Malformed SDP line", line)
        parsed.append((match.group(1), match.group(2)))
    if len(parsed) < 4:
        raise SDPError("Incomplete session description")
    if parsed[0] != ("v", "0"):
        raise SDPError("First line must be v=0", f"{parsed[0][0]}={parsed[0][1]}")
    if parsed[1][0] != "o":
        raise SDPError("Second line must be o=")
    if parsed[2][0] != "s":
        raise SDPError("Third line must be s=")
    origin = Origin.parse(parsed[1][1])
    fields: dict[str, object] = {
        "sessionName": parsed[2][1],
    }
    emails: list[str] = []
    phones: list[str] = []
    bandwidths: list[str] = []
    timings: list[Timing] = []
    attributes: list[Attribute] = []
    other: list[tuple[str, str]] = []
    media: list[MediaDescription] = []
    current: dict[str, list[object]] | None = None
    currentM: MediaDescription | None = None

    def finishMedia() -> None:
        if currentM is None or current is None:
            return
        media.append(
            replace(
                currentM,
                connections=tuple(current["c"]),  # type: ignore[arg-type]
                bandwidths=tuple(current["b"]),  # type: ignore[arg-type]
                attributes=tuple(current["a"]),  # type: ignore[arg-type]
                otherLines=tuple(current["x"]),  # type: ignore[arg-type]
            )
        )

    for kind, value in parsed[3:]:
        if kind == "m":
            if not timings:
                raise SDPError("m= before any t= line", value)
            finishMedia()
            currentM = MediaDescription.parseMLine(value)
            current = {"c": [], "b": [], "a": [], "x": []}
            continue
        if kind in "vos":
            raise SDPError(f"Repeated or misplaced {kind}= line", value)
        if current is not None and currentM is not None:
            if kind == "c":
                current["c"].append(Connection.parse(value))
            elif kind == "b":
                current["b"].append(value)
            elif kind == "a":
                current["a"].append(Attribute.parse(value))
            elif kind == "i":
                currentM = replace(currentM, information=value)
            elif kind == "k":
                currentM = replace(currentM, key=value)
            else:
                current["x"].append((kind, value))
            continue
        if kind == "t":
            times = [parseNumber(p) for p in value.split(" ")]
            if len(times) != 2 or times[0] is None or times[1] is None:
                raise SDPError("Malformed t= line", value)
            timings.append(Timing(times[0], times[1]))
        elif kind == "r":
            if not timings:
                raise SDPError("r= before t=", value)
            last = timings[-1]
            timings[-1] = replace(last, repeats=last.repeats + (value,))
        elif kind == "i":
            fields["information"] = value
        elif kind == "u":
            fields["uri"] = value
        elif kind == "e":
            emails.append(value)
        elif kind == "p":
            phones.append(value)
        elif kind == "c":
            fields["connection"] = Connection.parse(value)
        elif kind == "b":
            bandwidths.append(value)
        elif kind == "z":
            fields["zoneAdjustments"] = value
        elif kind == "k":
            fields["key"] = value
        elif kind == "a":
            attributes.append(Attribute.parse(value))
        else:
            other.append((kind, value))
    finishMedia()
    if not timings:
        raise SDPError("Missing t= line")
    return SessionDescription(
        origin=origin,
        sessionName=str(fields["sessionName"]),
        timings=tuple(timings),
        media=tuple(media),
        information=fields.get("information"),  # type: ignore[arg-type]
        uri=fields.get("uri"),  # type: ignore[arg-type]
        emails=tuple(emails),
        phones=tuple(phones),
        connection=fields.get("connection"),  # type: ignore[arg-type]
        bandwidths=tuple(bandwidths),
        zoneAdjustments=fields.get("zoneAdjustments"),  # type: ignore[arg-type]
        key=fields.get("key"),  # type: ignore[arg-type]
        attributes=tuple(attributes),
        otherLines=tuple(other),
    )


# --- offer/answer (RFC 3264) ----------------------------------------------


class Direction(Enum):
    """
    Media direction attributes (RFC 8866 section 6.7).
    """

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"


def rejectMedia(media: MediaDescription) -> MediaDescription:
    """
    The answer to a refused stream: same media, protocol and formats,
    port 0, no attributes (RFC 3264 section 6).
    """
    return MediaDescription(
        media=media.media, port=0, proto=media.proto, formats=media.formats
    )


def updateOrigin(
    new: SessionDescription, previous: SessionDescription | None
) -> SessionDescription:
    """
    Apply RFC 3264 section 8 / RFC 4975 section 8.4 (R-156) to an updated
    description: unchanged content keeps the previous o= line exactly;
    changed content gets the previous username, session id and address
    with the version incremented by one.  Without a previous description
    C{new} is returned as is.
    """
    if previous is None:
        return new
    if replace(new, origin=previous.origin) == previous:
        return replace(new, origin=previous.origin)
    return replace(
        new,
        origin=replace(
            previous.origin, sessionVersion=previous.origin.sessionVersion + 1
        ),
    )
