"""
Fuzz L{stoxgw.sip.sdp.parseSDP} (RFC 8866) and what the chat layer does
with a peer's offer or answer: L{MSRPMedia.fromMedia} on every m-line (the
MSRP profile of RFC 4975 section 8, RFC 6135 C{a=setup}, RFC 7701
C{a=chatroom}) and L{answerMSRPOffer} as Gateway B answers.

Clean rejection: L{SDPError} (L{SDPNegotiationError} is one).  A parsed
description serializes and parses again to an equal one, and so does the
answer we would send (with the offer's refused m-lines copied into it).

Seeds: the offers of C{tests/sip/test_sdp.py} and C{tests/test_robustness.py}
(RFC 4975 section 4, RFC 7702 sections 5.1 and 6.1) and the SDP bodies of
the RFC 4475 messages and SIPp scenarios in C{tests/fixtures}.
"""

from __future__ import annotations

import re

import atheris

from _harness import fixtures, main

with atheris.instrument_imports(include=["stoxgw"]):
    from stoxgw.sip.msrpmedia import MSRPMedia, answerMSRPOffer
    from stoxgw.sip.sdp import Origin, SDPError, parseSDP, updateOrigin

ORIGIN = Origin("-", "42", 1, address="s2x.example.org")


def testOneInput(data: bytes) -> None:
    """
    Parse, read every MSRP m-line, answer.
    """
    try:
        offer = parseSDP(data)
    except SDPError:
        return
    again = parseSDP(offer.serialize())
    assert again == offer, (offer, again)
    for media in offer.media:
        media.mLine()
        offer.connectionFor(media)
        try:
            view = MSRPMedia.fromMedia(media, offer)
        except SDPError:
            continue
        view.secure, view.hasChatroomToken("nickname")
        view.toMediaDescription()
    for path in ("msrp://s2x.example.org:8763/lkjh37s2s20w2a;tcp",
                 "msrps://s2x.example.org:8763/lkjh37s2s20w2a;tcp"):
        try:
            answer, _ = answerMSRPOffer(
                offer,
                origin=ORIGIN,
                path=[path],
                port=8763,
                connectionAddress="s2x.example.org",
                acceptTypes=["message/cpim", "text/plain"],
                acceptWrappedTypes=["text/plain", "text/html"],
                chatroom=["nickname", "private-messages"],
                requiredTypes=["message/cpim"] if path.startswith("msrps") else [],
            )
        except SDPError:
            continue
        reparsed = parseSDP(answer.serialize())
        assert reparsed == answer, (answer, reparsed)
        updateOrigin(answer, offer)


def seeds() -> list[bytes]:
    """
    Real offers and answers.
    """
    import tests.sip.test_sdp as t
    import tests.test_robustness as r

    result = [
        value.encode("utf-8")
        for name, value in sorted(vars(t).items())
        if isinstance(value, str) and value.startswith("v=0")
    ]
    result.append(r.SDP_OFFER)
    for text in fixtures("sip/rfc4475/*.dat") + fixtures("sipp/*.xml"):
        for match in re.finditer(rb"v=0\r?\n(?:[a-z]=[^\n]*\n)+", text):
            result.append(match.group(0))
    return result


if __name__ == "__main__":
    main(testOneInput, seeds)
