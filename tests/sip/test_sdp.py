# -*- test-case-name: tests.sip.test_sdp -*-
"""
Tests for L{stoxgw.sip.sdp}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.sip.msrpmedia import (
    Fingerprint,
    MSRPMedia,
    Setup,
    acceptTypesIntersection,
    answerMSRPOffer,
    answerSetup,
)
from stoxgw.sip.sdp import (
    Attribute,
    Direction,
    Origin,
    SDPError,
    SDPNegotiationError,
    SessionDescription,
    parseSDP,
    rejectMedia,
    updateOrigin,
)

#: RFC 4975 section 4, Figure 1, Alice's offer; the RFC elides v/o/s/t
#: ("some lines ... are removed"), completed here so that it is valid SDP.
RFC4975_OFFER = (
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 atlanta.example.com\r\n"
    "s=-\r\n"
    "c=IN IP4 atlanta.example.com\r\n"
    "t=0 0\r\n"
    "m=message 7654 TCP/MSRP *\r\n"
    "a=accept-types:text/plain\r\n"
    "a=path:msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n"
)

#: RFC 7702 section 5.1 Example 2 (F2) as corrected in SPEC.md C.1.1:
#: message/cpim and complete session lines.
RFC7702_OFFER = (
    "v=0\n"
    "o=- 1 1 IN IP4 x2m.example.com\n"
    "s=-\n"
    "c=IN IP4 x2m.example.com\n"
    "t=0 0\n"
    "m=message 7654 TCP/MSRP *\n"
    "a=accept-types:message/cpim\n"
    "a=accept-wrapped-types:text/plain text/html\n"
    "a=path:msrp://x2m.example.com:7654/jshA7weztas;tcp\n"
    "a=chatroom:nickname private-messages\n"
    "a=setup:actpass\n"
)

#: RFC 7702 section 6.1 (Example 27) offer of a SIP UA to Gateway B, with
#: an audio stream added to check per-stream answers.
RFC7702_UA_OFFER = (
    "v=0\r\n"
    "o=romeo 2890844526 2890844527 IN IP4 ua.example.org\r\n"
    "s=-\r\n"
    "c=IN IP4 ua.example.org\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "m=message 7313 TCP/MSRP *\r\n"
    "a=accept-types:message/cpim text/plain text/html\r\n"
    "a=accept-wrapped-types:text/plain text/html\r\n"
    "a=path:msrp://ua.example.org:7313/ansp71weztas;tcp\r\n"
    "a=chatroom:nickname private-messages\r\n"
)


class ParseTests(SynchronousTestCase):
    """
    RFC 8866 syntax.
    """

    def test_rfc4975(self) -> None:
        """
        R-153/R-154: the RFC 4975 offer parses; m-line, c-line and MSRP
        attributes are read; serialization gives the text back.
        """
        sdp = parseSDP(RFC4975_OFFER.encode())
        self.assertEqual(sdp.origin.username, "alice")
        self.assertEqual(sdp.origin.sessionVersion, 2890844526)
        media = sdp.media[0]
        self.assertEqual(
            (media.media, media.port, media.proto, media.formats),
            ("message", 7654, "TCP/MSRP", ("*",)),
        )
        view = MSRPMedia.fromMedia(media, sdp)
        self.assertEqual(
            view.path, ("msrp://atlanta.example.com:7654/jshA7weztas;tcp",)
        )
        self.assertEqual(view.acceptTypes, ("text/plain",))
        self.assertEqual(view.connectionAddress, "atlanta.example.com")
        self.assertIsNone(view.setup)
        self.assertIsNone(view.chatroom)
        self.assertEqual(sdp.serialize().decode(), RFC4975_OFFER)

    def test_lineEnds(self) -> None:
        """
        LF input is accepted; output uses CRLF.
        """
        sdp = parseSDP(RFC7702_OFFER)
        self.assertEqual(sdp.serialize(), RFC7702_OFFER.replace("\n", "\r\n").encode())

    def test_allLines(self) -> None:
        """
        Every RFC 8866 line type, unknown types and per-media c/b/i/k kept.
        """
        text = (
            "v=0\r\no=jdoe 3724394400 3724394405 IN IP4 198.51.100.1\r\ns=Call to John Smith\r\n"
            "i=SDP Offer #1\r\nu=http://www.jdoe.example.com/home.html\r\n"
            "e=Jane Doe <jane@jdoe.example.com>\r\np=+1 617 555-6011\r\n"
            "c=IN IP4 198.51.100.1\r\nb=AS:128\r\nt=0 0\r\nr=7d 1h 0 25h\r\n"
            "z=2882844526 -1h 2898848070 0\r\nk=prompt\r\na=recvonly\r\ny=unknown line\r\n"
            "m=audio 49170/2 RTP/AVP 0 8\r\ni=voice\r\nc=IN IP6 2001:db8::2\r\nb=AS:64\r\n"
            "k=prompt\r\na=rtpmap:0 PCMU/8000\r\nq=also unknown\r\n"
            "m=video 51372 RTP/AVP 99\r\na=rtpmap:99 h263-1998/90000\r\n"
        )
        sdp = parseSDP(text)
        self.assertEqual(sdp.sessionName, "Call to John Smith")
        self.assertEqual(sdp.timings[0].repeats, ("7d 1h 0 25h",))
        self.assertEqual(sdp.otherLines, (("y", "unknown line"),))
        audio = sdp.media[0]
        self.assertEqual(audio.portCount, 2)
        self.assertEqual(audio.connections[0].addrType, "IP6")
        self.assertEqual(audio.otherLines, (("q", "also unknown"),))
        self.assertEqual(sdp.connectionFor(sdp.media[1]).address, "198.51.100.1")  # type: ignore[union-attr]
        self.assertEqual(sdp.serialize().decode(), text)

    def test_strict(self) -> None:
        """
        v/o/s must open the description, t must precede m, lines must be
        C{x=value}.
        """
        bad = [
            "o=- 1 1 IN IP4 h\r\nv=0\r\ns=-\r\nt=0 0\r\n",
            "v=0\r\ns=-\r\no=- 1 1 IN IP4 h\r\nt=0 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=message 1 TCP/MSRP *\r\nt=0 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\n",
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nbad line\r\n",
            "v=1\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n",
            "v=0\r\no=- 1 x IN IP4 h\r\ns=-\r\nt=0 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=message port TCP/MSRP *\r\n",
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nv=0\r\n",
        ]
        for text in bad:
            with self.assertRaises(SDPError, msg=text) as caught:
                parseSDP(text)
            self.assertEqual(caught.exception.status, 400)


    def test_nonASCIIDigits(self) -> None:
        """
        Numbers are ASCII digits (RFC 8866 section 9: C{DIGIT}), at most 20
        of them (64 bits): a character for which C{str.isdigit} holds but
        C{int} fails (U+00B9 SUPERSCRIPT ONE, found by C{fuzz/fuzz_sdp.py}),
        another script's digits, or a number too long for C{int} are
        L{SDPError}, not C{ValueError}.
        """
        head = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n"
        for text in [
            head + "t=0 \u00b90\r\n",
            head + "t=\u0663 0\r\n",
            head + "t=0 " + "9" * 5000 + "\r\n",
            "v=0\r\no=- 1 \u00b2 IN IP4 h\r\ns=-\r\nt=0 0\r\n",
            "v=0\r\no=- 1 " + "9" * 5000 + " IN IP4 h\r\ns=-\r\nt=0 0\r\n",
            head + "t=0 0\r\nm=message \u00b2 TCP/MSRP *\r\n",
            head + "t=0 0\r\nm=message 9/\u00b2 TCP/MSRP *\r\n",
            head + "t=0 0\r\nm=message 9/" + "9" * 5000 + " TCP/MSRP *\r\n",
        ]:
            with self.assertRaises(SDPError, msg=text[:80]):
                parseSDP(text)
        self.assertEqual(
            parseSDP("v=0\r\no=- 1 18446744073709551615 IN IP4 h\r\ns=-\r\nt=0 0\r\n")
            .origin.sessionVersion,
            2**64 - 1,
        )


class MSRPMediaTests(SynchronousTestCase):
    """
    The MSRP attributes (RFC 4975 section 8, RFC 6135, RFC 7701 section 8).
    """

    def test_rfc7702(self) -> None:
        """
        R-006/R-007/R-008: the Gateway A offer: message/cpim, wrapped types,
        chatroom tokens, actpass.
        """
        sdp = parseSDP(RFC7702_OFFER)
        view = MSRPMedia.fromMedia(sdp.media[0], sdp)
        self.assertEqual(view.acceptTypes, ("message/cpim",))
        self.assertEqual(view.acceptWrappedTypes, ("text/plain", "text/html"))
        self.assertEqual(view.chatroom, ("nickname", "private-messages"))
        self.assertTrue(view.hasChatroomToken("Private-Messages"))
        self.assertIs(view.setup, Setup.ACTPASS)
        self.assertIs(view.direction, Direction.SENDRECV)
        self.assertFalse(view.secure)

    def test_attributes(self) -> None:
        """
        R-093/R-096/R-159/R-161: bare chatroom, unknown tokens kept,
        max-size, fingerprint, TLS profile, relay path, direction; and the
        view builds its m-line back.
        """
        media = parseSDP(
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=message 2855 TCP/TLS/MSRP *\r\n"
            "c=IN IP4 relay.example.net\r\na=accept-types:message/cpim text/*\r\n"
            "a=max-size:131072\r\n"
            "a=path:msrps://relay.example.net:2855/a;tcp msrps://h:7777/b;tcp\r\n"
            "a=fingerprint:SHA-256 4a:ad:b9:b1:3f:82:18:3b\r\n"
            "a=chatroom:nickname com.example.chat.foo\r\na=sendonly\r\n"
        ).media[0]
        view = MSRPMedia.fromMedia(media)
        self.assertTrue(view.secure)
        self.assertEqual(view.maxSize, 131072)
        self.assertEqual(view.path[0], "msrps://relay.example.net:2855/a;tcp")
        self.assertEqual(
            view.fingerprints, (Fingerprint("sha-256", "4A:AD:B9:B1:3F:82:18:3B"),)
        )
        self.assertEqual(view.chatroom, ("nickname", "com.example.chat.foo"))
        self.assertIs(view.direction, Direction.SENDONLY)
        self.assertEqual(view.connectionAddress, "relay.example.net")
        self.assertEqual(MSRPMedia.fromMedia(view.toMediaDescription()), view)
        bare = media.__class__(
            media="message",
            port=9,
            proto="TCP/MSRP",
            formats=("*",),
            attributes=(
                Attribute("accept-types", "message/cpim"),
                Attribute("path", "msrp://h:9/x;tcp"),
                Attribute("chatroom"),
            ),
        )
        self.assertEqual(MSRPMedia.fromMedia(bare).chatroom, ())

    def test_invalid(self) -> None:
        """
        R-095/R-154/R-158: duplicate chatroom tokens, missing path or
        accept-types, bad setup or max-size, non-MSRP lines are errors.
        """
        base = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\n"
        good = "a=accept-types:message/cpim\r\na=path:msrp://h:9/x;tcp\r\n"
        for extra in [
            good + "a=chatroom:nickname nickname\r\n",
            "a=accept-types:message/cpim\r\n",
            "a=path:msrp://h:9/x;tcp\r\n",
            good + "a=setup:sometimes\r\n",
            good + "a=max-size:big\r\n",
            good + "a=max-size:\u00b2\r\n",
            good + "a=max-size:" + "9" * 5000 + "\r\n",
            good + "a=fingerprint:sha-1\r\n",
        ]:
            sdp = parseSDP(base + extra)
            self.assertRaises(SDPError, MSRPMedia.fromMedia, sdp.media[0])
        audio = parseSDP(
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
        )
        self.assertRaises(SDPError, MSRPMedia.fromMedia, audio.media[0])


class OfferAnswerTests(SynchronousTestCase):
    """
    RFC 3264 / RFC 4975 section 8 / RFC 6135 section 4.2 answers.
    """

    def answer(
        self, offer: str, **kwargs: object
    ) -> tuple[SessionDescription, MSRPMedia]:
        options: dict[str, object] = dict(
            origin=Origin("-", "42", 1, address="s2x.example.org"),
            path=["msrp://s2x.example.org:8763/lkjh37s2s20w2a;tcp"],
            port=8763,
            connectionAddress="s2x.example.org",
            acceptTypes=["message/cpim"],
            acceptWrappedTypes=["text/plain", "text/html"],
            chatroom=["nickname", "private-messages"],
            requiredTypes=["message/cpim"],
        )
        options.update(kwargs)
        return answerMSRPOffer(parseSDP(offer), **options)  # type: ignore[arg-type]

    def test_gatewayB(self) -> None:
        """
        R-032/R-034/R-052/R-054/R-055: Gateway B answers the UA's offer
        with message/cpim only, its own path, chatroom tokens; the audio
        stream is refused with port 0 keeping its format list (RFC 3264
        section 6).
        """
        answer, offered = self.answer(RFC7702_UA_OFFER)
        self.assertEqual(offered.path, ("msrp://ua.example.org:7313/ansp71weztas;tcp",))
        audio, message = answer.media
        self.assertEqual(audio.mLine(), "audio 0 RTP/AVP 0")
        self.assertEqual(audio.attributes, ())
        view = MSRPMedia.fromMedia(message, answer)
        self.assertEqual(view.acceptTypes, ("message/cpim",))
        self.assertEqual(view.acceptWrappedTypes, ("text/plain", "text/html"))
        self.assertEqual(view.path, ("msrp://s2x.example.org:8763/lkjh37s2s20w2a;tcp",))
        self.assertEqual(view.port, 8763)
        self.assertEqual(view.connectionAddress, "s2x.example.org")
        self.assertEqual(view.chatroom, ("nickname", "private-messages"))
        self.assertIs(view.setup, Setup.PASSIVE)
        reparsed = parseSDP(answer.serialize())
        self.assertEqual(reparsed, answer)

    def test_notAcceptable(self) -> None:
        """
        R-053/R-158: an offer without message/cpim, or with only other
        media, cannot be answered: 488.
        """
        offer = RFC7702_UA_OFFER.replace(
            "message/cpim text/plain text/html\r\n", "text/plain\r\n"
        )
        with self.assertRaises(SDPNegotiationError) as caught:
            self.answer(offer)
        self.assertEqual(caught.exception.status, 488)
        self.assertIn("message/cpim", caught.exception.reason)
        self.assertRaises(
            SDPNegotiationError,
            self.answer,
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n",
        )
        self.assertRaises(
            SDPNegotiationError,
            self.answer,
            RFC4975_OFFER.replace("TCP/MSRP", "TCP/TLS/MSRP"),
        )

    def test_intersection(self) -> None:
        """
        RFC 4975 section 8.6: the answer lists our types the peer accepts,
        wildcards honoured.
        """
        self.assertEqual(
            acceptTypesIntersection(
                ["message/cpim", "text/plain", "text/html"], ["text/*", "image/png"]
            ),
            ("text/plain", "text/html"),
        )
        self.assertEqual(
            acceptTypesIntersection(["message/cpim"], ["*"]), ("message/cpim",)
        )
        self.assertEqual(
            acceptTypesIntersection(["text/*"], ["text/plain"]), ("text/*",)
        )
        answer, _ = self.answer(
            RFC4975_OFFER,
            acceptTypes=["message/cpim", "text/plain"],
            requiredTypes=[],
            chatroom=None,
            useSetup=False,
        )
        view = MSRPMedia.fromMedia(answer.media[0])
        self.assertEqual(view.acceptTypes, ("text/plain",))
        self.assertIsNone(view.setup)
        self.assertIsNone(view.chatroom)

    def test_setup(self) -> None:
        """
        R-164/R-165: RFC 6135 answer roles.
        """
        self.assertIs(answerSetup(Setup.ACTPASS, True), Setup.PASSIVE)
        self.assertIs(answerSetup(Setup.ACTPASS, False), Setup.ACTIVE)
        self.assertIs(answerSetup(Setup.ACTIVE, False), Setup.PASSIVE)
        self.assertIs(answerSetup(Setup.PASSIVE, True), Setup.ACTIVE)
        self.assertIs(answerSetup(Setup.HOLDCONN, True), Setup.PASSIVE)
        self.assertIs(answerSetup(None, False), Setup.PASSIVE)
        answer, _ = self.answer(RFC7702_OFFER, reachable=False)
        self.assertEqual(answer.media[0].attribute("setup"), "active")

    def test_secure(self) -> None:
        """
        A TLS path answers a TCP/TLS/MSRP offer and refuses a TCP/MSRP one.
        """
        offer = RFC4975_OFFER.replace("TCP/MSRP", "TCP/TLS/MSRP").replace(
            "msrp://", "msrps://"
        )
        answer, offered = self.answer(
            offer,
            path=["msrps://s2x.example.org:8763/x;tcp"],
            requiredTypes=[],
            acceptTypes=["text/plain"],
            fingerprints=[Fingerprint("sha-256", "AB:CD")],
        )
        self.assertTrue(offered.secure)
        self.assertEqual(answer.media[0].proto, "TCP/TLS/MSRP")
        self.assertEqual(answer.media[0].attribute("fingerprint"), "sha-256 AB:CD")
        self.assertRaises(
            SDPNegotiationError,
            self.answer,
            RFC4975_OFFER,
            path=["msrps://s2x.example.org:8763/x;tcp"],
            requiredTypes=[],
            acceptTypes=["text/plain"],
        )

    def test_reject(self) -> None:
        """
        L{rejectMedia} keeps media, protocol and formats with port 0.
        """
        media = parseSDP(RFC4975_OFFER).media[0]
        self.assertEqual(rejectMedia(media).mLine(), "message 0 TCP/MSRP *")

    def test_originVersion(self) -> None:
        """
        R-156 / RFC 3264 section 8: unchanged SDP keeps the o-line, changed
        SDP increments the version of the previous one.
        """
        first, _ = self.answer(RFC7702_UA_OFFER)
        again, _ = self.answer(RFC7702_UA_OFFER, origin=Origin("-", "99", 7))
        self.assertEqual(updateOrigin(again, first).origin, first.origin)
        changed, _ = self.answer(RFC7702_UA_OFFER, chatroom=["nickname"])
        updated = updateOrigin(changed, first)
        self.assertEqual(updated.origin.sessionVersion, 2)
        self.assertEqual(updated.origin.sessionID, "42")
        self.assertEqual(updateOrigin(changed, None), changed)
