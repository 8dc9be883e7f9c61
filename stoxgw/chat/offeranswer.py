# -*- test-case-name: tests.chat.test_session -*-
"""
The SDP side of a chat session's offer and answer (RFC 3264, RFC 4975
section 8): the MSRP stream of a description, its C{a=path} and
C{a=fingerprint}, our own fingerprints and a fresh C{o=} line.
"""

from __future__ import annotations

import random

from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.uri import MSRPURI, MSRPURIError
from stoxgw.sip.msrpmedia import MSRP_PROTOCOLS, Fingerprint, MSRPMedia
from stoxgw.sip.sdp import Origin, SDPError, SessionDescription

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
