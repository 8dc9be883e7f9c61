# -*- test-case-name: tests.chat.test_session -*-
"""
The SDP side of a chat session's offer and answer (RFC 3264, RFC 4975
section 8): the MSRP stream of a description, its C{a=path} and
C{a=fingerprint}, our own fingerprints, a fresh C{o=} line, and the answer to a
re-offer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.uri import MSRPURI, MSRPURIError
from stoxgw.sip.msrpmedia import (
    MSRP_PROTOCOLS,
    Fingerprint,
    MSRPMedia,
    Setup,
    answerMSRPOffer,
    answerSetup,
)
from stoxgw.sip.sdp import (
    Origin,
    SDPError,
    SDPNegotiationError,
    SessionDescription,
    updateOrigin,
)

@dataclass(frozen=True, slots=True)
class OwnTerms:
    """
    What we take on a session's MSRP stream, as first offered or decided:
    kept to answer the peer's re-offers on the same terms (RFC 4975
    section 8.4).

    @ivar acceptTypes: Our C{accept-types}, in preference order.
    @ivar acceptWrappedTypes: Our C{accept-wrapped-types}.
    @ivar maxSize: Our C{a=max-size}, or L{None}.
    @ivar chatroom: Our C{a=chatroom} tokens, or L{None} for no line.
    @ivar requiredTypes: Types an offer must list (a focus requires
        C{message/cpim}, RFC 7701 section 5.2).
    """

    acceptTypes: tuple[str, ...]
    acceptWrappedTypes: tuple[str, ...] = ()
    maxSize: int | None = None
    chatroom: tuple[str, ...] | None = None
    requiredTypes: tuple[str, ...] = ()


def offeredMSRP(description: SessionDescription) -> MSRPMedia:
    """
    The first offered or answered MSRP stream with a port.

    @raise SDPError: None, or malformed.
    """
    for media in description.media:
        if (
            media.port != 0
            and media.media == "message"
            and media.proto.upper() in MSRP_PROTOCOLS
        ):
            return MSRPMedia.fromMedia(media, description)
    raise SDPError("No MSRP stream")


def pathOf(media: MSRPMedia) -> tuple[MSRPURI, ...]:
    """
    The C{a=path} as URIs.

    @raise SDPError: A malformed URI.
    """
    try:
        return tuple(MSRPURI.fromString(text) for text in media.path)
    except MSRPURIError as e:
        raise SDPError(f"Malformed a=path: {e}") from None


def fingerprintText(media: MSRPMedia) -> str | None:
    """
    The peer's first C{a=fingerprint} value, or L{None}.
    """
    return media.fingerprints[0].serialize() if media.fingerprints else None


def ownFingerprints(endpoint: MSRPEndpoint) -> tuple[Fingerprint, ...]:
    """
    Our C{a=fingerprint} for C{msrps} paths (R-161).
    """
    if endpoint.tls is None or not endpoint.listensWithTLS:
        return ()
    own = endpoint.tls.fingerprint()
    return () if own is None else (Fingerprint.parse(own.toSDP()),)


def newOrigin(address: str) -> Origin:
    """
    A fresh o= line.
    """
    return Origin(
        "-",
        str(random.randint(1, 2**62)),
        1,
        addrType="IP6" if ":" in address else "IP4",
        address=address,
    )


def reanswerMSRP(
    offer: SessionDescription,
    previous: SessionDescription,
    local: MSRPMedia,
    remote: MSRPMedia,
    terms: OwnTerms,
    active: bool,
) -> tuple[SessionDescription, MSRPMedia]:
    """
    Answer the peer's re-offer in an established session (RFC 4975
    section 8.4, R-156): its C{accept-types}, C{accept-wrapped-types},
    C{max-size} and C{a=chatroom} (RFC 7701 section 8, R-094) are read
    again, and the answer gives our path again, our own C{terms} and the
    role we have on the connection (RFC 6135), with the C{o=} of our
    C{previous} description, its version counted up if anything changed
    (RFC 3264 section 8).  What would need another MSRP connection is
    refused: another path, another certificate, or the peer taking our
    side of the connection.

    @param local: Our stream as last sent.
    @param remote: The peer's stream as last taken.
    @param active: Whether we opened the connection.
    @return: The answer and the peer's stream as offered.
    @raise SDPError: Malformed, or refused (L{SDPNegotiationError}, 488).
    """
    media = offeredMSRP(offer)
    if media.path != remote.path:
        raise SDPNegotiationError("MSRP path changes not supported")
    if fingerprintText(media) != fingerprintText(remote):
        raise SDPNegotiationError("Certificate changes not supported")
    ours = Setup.ACTIVE if active else Setup.PASSIVE
    if local.setup is not None and answerSetup(media.setup, not active) is not ours:
        raise SDPNegotiationError("The offer changes who connects")
    answer, taken = answerMSRPOffer(
        offer,
        origin=previous.origin,
        path=local.path,
        port=local.port,
        connectionAddress=local.connectionAddress or "",
        acceptTypes=terms.acceptTypes,
        acceptWrappedTypes=terms.acceptWrappedTypes,
        maxSize=terms.maxSize,
        chatroom=terms.chatroom,
        reachable=not active,
        useSetup=local.setup is not None,
        fingerprints=local.fingerprints,
        requiredTypes=terms.requiredTypes,
    )
    return updateOrigin(answer, previous), taken

