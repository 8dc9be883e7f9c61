# -*- test-case-name: tests.sip.test_sessiontimer -*-
"""
Tests for L{stoxgw.sip.sessiontimer}: the RFC 4028 negotiation rules on
requests and responses built from text (the INVITE is the shape of RFC
4028 section 7.1's, from a UAC at 198.51.100.7).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.sip.headers import HeaderError, SessionExpires
from stoxgw.sip.message import SIPRequest, SIPResponse, parseDatagram
from stoxgw.sip.sessiontimer import (
    MIN_SE,
    IntervalTooSmall,
    SessionTimerSettings,
    SessionTimerTerms,
    answerRequest,
    minimumOf,
    requestHeaders,
    supportsTimer,
    termsFromResponse,
)

SETTINGS = SessionTimerSettings(interval=1800, minimum=120)


def invite(extra: str = "") -> SIPRequest:
    """
    An INVITE with C{extra} header lines.
    """
    message = parseDatagram(
        (
            "INVITE sip:room@192.0.2.1 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 198.51.100.7:5070;branch=z9hG4bKst1\r\n"
            "Max-Forwards: 70\r\n"
            "To: <sip:room@192.0.2.1>\r\n"
            "From: <sip:alice@example.com>;tag=a1\r\n"
            "Call-ID: st1@example.com\r\n"
            "CSeq: 1 INVITE\r\n"
            "Contact: <sip:alice@198.51.100.7:5070>\r\n"
            f"{extra}"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(message, SIPRequest)
    return message


def ok(extra: str = "") -> SIPResponse:
    """
    A 200 to L{invite} with C{extra} header lines.
    """
    response = invite().makeResponse(200, toTag="r1")
    for line in extra.splitlines():
        name, _, value = line.partition(":")
        response = response.addHeader(name.strip(), value.strip())
    return response


class HeaderTests(SynchronousTestCase):
    """
    Session-Expires (compact C{x}) and Min-SE as the module reads them.
    """

    def test_supported(self) -> None:
        """
        C{timer} in Supported or its compact form C{k}, any case.
        """
        self.assertTrue(supportsTimer(invite("Supported: 100rel, Timer\r\n")))
        self.assertTrue(supportsTimer(invite("k: timer\r\n")))
        self.assertFalse(supportsTimer(invite("Supported: 100rel\r\n")))
        self.assertFalse(supportsTimer(invite()))

    def test_minimum(self) -> None:
        """
        RFC 4028 section 5: Min-SE defaults to 90 and is never below it.
        """
        self.assertEqual(minimumOf(invite()), MIN_SE)
        self.assertEqual(minimumOf(invite("Min-SE: 600;x=y\r\n")), 600)
        self.assertEqual(minimumOf(invite("Min-SE: 10\r\n")), MIN_SE)
        self.assertRaises(HeaderError, minimumOf, invite("Min-SE: soon\r\n"))


class AnswerRequestTests(SynchronousTestCase):
    """
    RFC 4028 section 9: the UAS's answer.
    """

    def test_tooSmall422(self) -> None:
        """
        A UAC that supports the extension and asks for less than our
        minimum gets 422 with our Min-SE.
        """
        with self.assertRaises(IntervalTooSmall) as raised:
            answerRequest(
                invite("Supported: timer\r\nSession-Expires: 100\r\n"), SETTINGS
            )
        self.assertEqual(raised.exception.minimum, 120)

    def test_peerRefreshes(self) -> None:
        """
        Both support the extension and the UAC leaves the choice open:
        the UAC refreshes (table 2, fourth row), the 2xx says so with
        Require: timer (MUST for refresher=uac), and we watch.
        """
        terms, headers = answerRequest(
            invite("Supported: timer\r\nSession-Expires: 600\r\n"), SETTINGS
        )
        self.assertEqual(
            headers,
            (("Session-Expires", "600;refresher=uac"), ("Require", "timer")),
        )
        self.assertEqual(terms, SessionTimerTerms(600, False, 120))

    def test_reduced(self) -> None:
        """
        The UAS may reduce the interval to its own, never below the
        request's Min-SE and never increase it.
        """
        terms, headers = answerRequest(
            invite("k: timer\r\nx: 7200;refresher=uas\r\nMin-SE: 2000\r\n"), SETTINGS
        )
        self.assertEqual(headers[0], ("Session-Expires", "2000;refresher=uas"))
        self.assertEqual(terms, SessionTimerTerms(2000, True, 2000))
        terms, _ = answerRequest(
            invite("Supported: timer\r\nSession-Expires: 7200\r\n"), SETTINGS
        )
        self.assertEqual(terms.interval, 1800)

    def test_uacChoiceKept(self) -> None:
        """
        Table 2: a refresher the UAC chose stays.
        """
        terms, headers = answerRequest(
            invite("Supported: timer\r\nSession-Expires: 900;refresher=uas\r\n"),
            SETTINGS,
        )
        self.assertEqual(headers[0], ("Session-Expires", "900;refresher=uas"))
        self.assertTrue(terms.localRefresher)

    def test_uacWithoutSupport(self) -> None:
        """
        Table 2, first row: a UAC that does not support the extension
        cannot refresh, so we do; no Require (it would fail the call),
        and no 422 even for a small interval (a proxy asked for it; we
        cannot increase it either).
        """
        terms, headers = answerRequest(invite(), SETTINGS)
        self.assertEqual(headers, (("Session-Expires", "1800;refresher=uas"),))
        self.assertTrue(terms.localRefresher)
        terms, headers = answerRequest(invite("Session-Expires: 100\r\n"), SETTINGS)
        self.assertEqual(headers, (("Session-Expires", "100;refresher=uas"),))

    def test_weAsk(self) -> None:
        """
        A UAC that supports the extension without asking for a timer gets
        ours (the UAS may request one, section 9), refreshed by the UAC.
        """
        terms, headers = answerRequest(invite("Supported: timer\r\n"), SETTINGS)
        self.assertEqual(
            headers, (("Session-Expires", "1800;refresher=uac"), ("Require", "timer"))
        )
        self.assertFalse(terms.localRefresher)

    def test_malformed(self) -> None:
        """
        A malformed Session-Expires is a 400 condition.
        """
        self.assertRaises(
            HeaderError, answerRequest, invite("Session-Expires: never\r\n"), SETTINGS
        )


class UACTests(SynchronousTestCase):
    """
    RFC 4028 section 7: our requests and the 2xx to them.
    """

    def test_requestHeaders(self) -> None:
        """
        Section 7.1: no refresher in the initial request; section 7.4:
        refreshes carry it; never below Min-SE.
        """
        self.assertEqual(
            requestHeaders(1800, 90),
            [("Session-Expires", "1800"), ("Min-SE", "90")],
        )
        self.assertEqual(
            requestHeaders(60, 90, "uac"),
            [("Session-Expires", "90;refresher=uac"), ("Min-SE", "90")],
        )

    def test_termsFromResponse(self) -> None:
        """
        Section 7.2: the 2xx's Session-Expires and refresher decide;
        without one the UAC that asked refreshes alone; an interval below
        90 s counts as 90 s (section 11).
        """
        self.assertEqual(
            termsFromResponse(ok("Session-Expires: 600;refresher=uac"), 1800),
            SessionTimerTerms(600, True),
        )
        self.assertEqual(
            termsFromResponse(ok("Session-Expires: 600;refresher=uas"), 1800, 120),
            SessionTimerTerms(600, False, 120),
        )
        self.assertEqual(termsFromResponse(ok(), 1800), SessionTimerTerms(1800, True))
        self.assertEqual(
            termsFromResponse(ok("Session-Expires: 1;refresher=uac"), 1800).interval,
            MIN_SE,
        )


class TermsTests(SynchronousTestCase):
    """
    When to refresh and when to give up (sections 7.2, 9, 10).
    """

    def test_delays(self) -> None:
        """
        The refresher refreshes at half the interval and gives up at the
        expiration; the other side ends the session min(32 s, interval/3)
        before it.
        """
        self.assertEqual(SessionTimerTerms(1800, True).refreshDelay, 900)
        self.assertEqual(SessionTimerTerms(1800, True).expiryDelay, 1800)
        self.assertEqual(SessionTimerTerms(1800, False).expiryDelay, 1768)
        self.assertEqual(SessionTimerTerms(90, False).expiryDelay, 60)
        self.assertEqual(SessionTimerTerms(90, True).refresherParameter, "uac")
        self.assertEqual(SessionTimerTerms(90, False).refresherParameter, "uas")

    def test_settingsChecked(self) -> None:
        """
        Min-SE is at least 90 s and the interval at least Min-SE.
        """
        self.assertRaises(ValueError, SessionTimerSettings, 1800, 30)
        self.assertRaises(ValueError, SessionTimerSettings, 100, 120)


class SessionExpiresHeaderTests(SynchronousTestCase):
    """
    L{SessionExpires} round trips.
    """

    def test_roundTrip(self) -> None:
        """
        Parameters survive; refresher is read case-insensitively and
        replaced by L{SessionExpires.withRefresher}.
        """
        value = SessionExpires.parse(" 4000 ; refresher=UAS ; foo")
        self.assertEqual((value.interval, value.refresher), (4000, "uas"))
        self.assertEqual(value.serialize(), "4000;refresher=UAS;foo")
        self.assertEqual(
            value.withRefresher("uac").serialize(), "4000;foo;refresher=uac"
        )
        self.assertIsNone(SessionExpires.parse("90;refresher=other").refresher)
        self.assertRaises(HeaderError, SessionExpires.parse, "-1")
