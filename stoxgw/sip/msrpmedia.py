# -*- test-case-name: tests.sip.test_sdp -*-
"""
The MSRP media profile of SDP (RFC 4975 section 8, RFC 6135 for
C{a=setup}, RFC 8122 for C{a=fingerprint}, RFC 7701 section 8 for
C{a=chatroom}) and the answer to an MSRP offer (RFC 3264, RFC 4975
section 8.6).

MSRP paths stay strings here: C{stoxgw.sip} must not import
C{stoxgw.msrp} (docs/design.md), so the session layer parses them.

Pure, sans-IO, standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Sequence

from stoxgw.sip.sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SDPError,
    SDPNegotiationError,
    SessionDescription,
    Timing,
    parseNumber,
    rejectMedia,
)

__all__ = [
    "MSRP_PROTOCOLS",
    "Setup",
    "Fingerprint",
    "MSRPMedia",
    "acceptTypesIntersection",
    "answerSetup",
    "answerMSRPOffer",
]

#: The MSRP m-line protocols (RFC 4975 section 8.1, RFC 4975 for TLS).
MSRP_PROTOCOLS = ("TCP/MSRP", "TCP/TLS/MSRP")


class Setup(Enum):
    """
    C{a=setup} roles (RFC 4145 section 4, used for MSRP by RFC 6135).
    """

    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"
    HOLDCONN = "holdconn"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """
    An C{a=fingerprint} value (RFC 8122 section 5): hash function and
    colon-separated upper-case hex.
    """

    hashFunction: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Fingerprint:
        """
        @raise SDPError: Malformed.
        """
        parts = text.split(" ")
        if len(parts) != 2 or not re.fullmatch(
            r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*", parts[1]
        ):
            raise SDPError("Malformed a=fingerprint", text)
        return cls(parts[0].lower(), parts[1].upper())

    def serialize(self) -> str:
        """
        The attribute value.
        """
        return f"{self.hashFunction} {self.value}"


_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")


@dataclass(frozen=True, slots=True)
class MSRPMedia:
    """
    A view of an MSRP m-line (RFC 4975 section 8).

    @ivar port: The m-line port (0: refused).
    @ivar proto: C{TCP/MSRP} or C{TCP/TLS/MSRP}.
    @ivar path: The C{a=path} URIs as text, leftmost (next hop) first.
    @ivar acceptTypes: C{a=accept-types}.
    @ivar acceptWrappedTypes: C{a=accept-wrapped-types}.
    @ivar maxSize: C{a=max-size}, or L{None}.
    @ivar setup: C{a=setup} (RFC 6135), or L{None} when absent.
    @ivar fingerprints: C{a=fingerprint} values.
    @ivar chatroom: The C{a=chatroom} tokens (RFC 7701 section 8), in
        order, or L{None} when the attribute is absent (a bare
        C{a=chatroom} is an empty tuple).
    @ivar direction: The direction attribute (default sendrecv).
    @ivar connectionAddress: The applicable C{c=} address, or L{None}.
    """

    port: int
    proto: str = "TCP/MSRP"
    path: tuple[str, ...] = ()
    acceptTypes: tuple[str, ...] = ()
    acceptWrappedTypes: tuple[str, ...] = ()
    maxSize: int | None = None
    setup: Setup | None = None
    fingerprints: tuple[Fingerprint, ...] = ()
    chatroom: tuple[str, ...] | None = None
    direction: Direction = Direction.SENDRECV
    connectionAddress: str | None = None

    @property
    def secure(self) -> bool:
        """
        Whether the stream runs over TLS.
        """
        return self.proto.upper() == "TCP/TLS/MSRP"

    def hasChatroomToken(self, token: str) -> bool:
        """
        Whether C{a=chatroom} lists C{token} (case-insensitive).
        """
        return self.chatroom is not None and token.lower() in (
            t.lower() for t in self.chatroom
        )

    @classmethod
    def fromMedia(
        cls, media: MediaDescription, session: SessionDescription | None = None
    ) -> MSRPMedia:
        """
        Read the MSRP attributes of an m-line.

        @raise SDPError: Not an MSRP m-line, or a malformed MSRP attribute
            (missing C{path} or C{accept-types} on an accepted stream, bad
            max-size, unknown setup role, duplicate chatroom token).
        """
        if media.media != "message" or media.proto.upper() not in MSRP_PROTOCOLS:
            raise SDPError("Not an MSRP m-line", media.mLine())
        path = tuple((media.attribute("path") or "").split())
        acceptTypes = tuple((media.attribute("accept-types") or "").split())
        if media.port != 0:
            if not path:
                raise SDPError("MSRP m-line without a=path", media.mLine())
            if not acceptTypes:
                raise SDPError("MSRP m-line without a=accept-types", media.mLine())
        maxSizeText = media.attribute("max-size")
        maxSize = None
        if maxSizeText is not None:
            maxSize = parseNumber(maxSizeText)
            if maxSize is None:
                raise SDPError("Malformed a=max-size", maxSizeText)
        setupText = media.attribute("setup")
        setup = None
        if setupText is not None:
            try:
                setup = Setup(setupText.lower())
            except ValueError:
                raise SDPError("Unknown a=setup role", setupText) from None
        chatroomText = media.attribute("chatroom")
        chatroom: tuple[str, ...] | None = None
        if chatroomText is not None:
            tokens = chatroomText.split()
            lowered = [t.lower() for t in tokens]
            if len(set(lowered)) != len(lowered):
                raise SDPError("Duplicate a=chatroom token", chatroomText)
            if not all(_TOKEN_RE.match(t) for t in tokens):
                raise SDPError("Malformed a=chatroom token", chatroomText)
            chatroom = tuple(tokens)
        direction = Direction.SENDRECV
        for candidate in Direction:
            if media.hasAttribute(candidate.value):
                direction = candidate
                break
        connection = (
            session.connectionFor(media)
            if session is not None
            else (media.connections[0] if media.connections else None)
        )
        return cls(
            port=media.port,
            proto=media.proto,
            path=path,
            acceptTypes=acceptTypes,
            acceptWrappedTypes=tuple(
                (media.attribute("accept-wrapped-types") or "").split()
            ),
            maxSize=maxSize,
            setup=setup,
            fingerprints=tuple(
                Fingerprint.parse(v) for v in media.attributeValues("fingerprint")
            ),
            chatroom=chatroom,
            direction=direction,
            connectionAddress=connection.address if connection else None,
        )

    def toMediaDescription(self, addrType: str = "IP4") -> MediaDescription:
        """
        Build the m-line (C{m=message <port> <proto> *}, a media-level
        C{c=} line when L{connectionAddress} is set, then accept-types,
        accept-wrapped-types, max-size, path, setup, fingerprint, chatroom
        and a direction other than sendrecv).
        """
        attributes = [Attribute("accept-types", " ".join(self.acceptTypes))]
        if self.acceptWrappedTypes:
            attributes.append(
                Attribute("accept-wrapped-types", " ".join(self.acceptWrappedTypes))
            )
        if self.maxSize is not None:
            attributes.append(Attribute("max-size", str(self.maxSize)))
        attributes.append(Attribute("path", " ".join(self.path)))
        if self.setup is not None:
            attributes.append(Attribute("setup", self.setup.value))
        attributes.extend(
            Attribute("fingerprint", f.serialize()) for f in self.fingerprints
        )
        if self.chatroom is not None:
            attributes.append(
                Attribute(
                    "chatroom", " ".join(self.chatroom) if self.chatroom else None
                )
            )
        if self.direction is not Direction.SENDRECV:
            attributes.append(Attribute(self.direction.value))
        connections: tuple[Connection, ...] = ()
        if self.connectionAddress is not None:
            connections = (
                Connection(
                    self.connectionAddress,
                    addrType="IP6" if ":" in self.connectionAddress else addrType,
                ),
            )
        return MediaDescription(
            media="message",
            port=self.port,
            proto=self.proto,
            formats=("*",),
            connections=connections,
            attributes=tuple(attributes),
        )


def _typeMatches(pattern: str, mimeType: str) -> bool:
    pattern = pattern.lower()
    mimeType = mimeType.lower()
    if pattern == "*" or mimeType == "*":
        return True
    if pattern.endswith("/*"):
        return mimeType.split("/")[0] == pattern[:-2]
    if mimeType.endswith("/*"):
        return pattern.split("/")[0] == mimeType[:-2]
    return pattern == mimeType


def acceptTypesIntersection(
    ours: Sequence[str], theirs: Sequence[str]
) -> tuple[str, ...]:
    """
    The types of C{ours} that the peer also accepts (wildcards C{*} and
    C{type/*} on either side honoured), in our order (RFC 4975 section
    8.6).
    """
    return tuple(t for t in ours if any(_typeMatches(p, t) for p in theirs))


def answerSetup(offered: Setup | None, reachable: bool) -> Setup:
    """
    The C{a=setup} role of an answer (RFC 6135 section 4.2, RFC 4145
    section 4.1).

     - C{actpass}: C{passive} if we can accept connections (C{reachable},
       not behind a NAT), else C{active};
     - C{active}: C{passive}; C{passive}: C{active};
     - absent or C{holdconn} (ignored, R-164): the RFC 4975 default, the
       offerer connects, so C{passive}.
    """
    if offered is Setup.ACTPASS:
        return Setup.PASSIVE if reachable else Setup.ACTIVE
    if offered is Setup.PASSIVE:
        return Setup.ACTIVE
    return Setup.PASSIVE


def answerMSRPOffer(
    offer: SessionDescription,
    *,
    origin: Origin,
    path: Sequence[str],
    port: int,
    connectionAddress: str,
    acceptTypes: Sequence[str],
    acceptWrappedTypes: Sequence[str] = (),
    maxSize: int | None = None,
    chatroom: Sequence[str] | None = None,
    reachable: bool = True,
    useSetup: bool = True,
    fingerprints: Sequence[Fingerprint] = (),
    requiredTypes: Sequence[str] = (),
) -> tuple[SessionDescription, MSRPMedia]:
    """
    Answer an offer by accepting its first acceptable MSRP stream and
    refusing every other m-line with port 0 (RFC 3264 section 6, RFC 4975
    section 8).

    A stream is acceptable when its protocol matches our path scheme
    (C{msrps:} for C{TCP/TLS/MSRP}), its attributes are valid, it offers
    every type of C{requiredTypes} (RFC 7701 section 5.2: a focus requires
    Message/CPIM) and at least one of C{acceptTypes}.

    @param origin: Our o= line (see L{updateOrigin} for re-answers).
    @param path: Our MSRP path (rightmost = us), as URI text.
    @param port: Our MSRP port (the port of our path URI, R-153).
    @param connectionAddress: The host of our path URI (c= line, R-153).
    @param acceptTypes: Types we accept, in preference order; the answer
        lists those the offer also accepts.
    @param chatroom: Our C{a=chatroom} tokens, or L{None} to omit it.
    @param reachable: Whether we accept incoming connections (answer
        C{passive} to C{actpass}).
    @param useSetup: Whether to send C{a=setup} (RFC 6135).
    @return: The answer and the accepted offered stream's view.
    @raise SDPNegotiationError: No acceptable MSRP stream (488).
    """
    secure = bool(path) and path[-1].lower().startswith("msrps:")
    wanted = "TCP/TLS/MSRP" if secure else "TCP/MSRP"
    answered: list[MediaDescription] = []
    accepted: MSRPMedia | None = None
    problem = "No MSRP stream offered"
    for media in offer.media:
        if accepted is not None or media.port == 0:
            answered.append(rejectMedia(media))
            continue
        if media.media != "message" or media.proto.upper() not in MSRP_PROTOCOLS:
            answered.append(rejectMedia(media))
            continue
        if media.proto.upper() != wanted:
            problem = f"Offered {media.proto}, we use {wanted}"
            answered.append(rejectMedia(media))
            continue
        try:
            view = MSRPMedia.fromMedia(media, offer)
        except SDPError as e:
            problem = e.reason
            answered.append(rejectMedia(media))
            continue
        missing = [
            t
            for t in requiredTypes
            if not any(_typeMatches(o, t) for o in view.acceptTypes)
        ]
        common = acceptTypesIntersection(acceptTypes, view.acceptTypes)
        if missing or not common:
            problem = "No acceptable accept-types" + (
                f" (missing {' '.join(missing)})" if missing else ""
            )
            answered.append(rejectMedia(media))
            continue
        accepted = view
        ours = MSRPMedia(
            port=port,
            proto=media.proto,
            path=tuple(path),
            acceptTypes=common,
            acceptWrappedTypes=tuple(acceptWrappedTypes),
            maxSize=maxSize,
            setup=answerSetup(view.setup, reachable) if useSetup else None,
            fingerprints=tuple(fingerprints),
            chatroom=tuple(chatroom) if chatroom is not None else None,
            connectionAddress=connectionAddress,
        )
        answered.append(ours.toMediaDescription())
    if accepted is None:
        raise SDPNegotiationError(problem)
    answer = SessionDescription(
        origin=origin,
        sessionName="-",
        timings=(Timing(),),
        media=tuple(answered),
    )
    return answer, accepted


