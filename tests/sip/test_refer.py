# -*- test-case-name: tests.sip.test_refer -*-
"""
Tests for L{stoxgw.sip.refer}: REFER (RFC 3515) and Refer-Sub (RFC 4488)
on a UA core over a fake UDP socket and a clock (SPEC D.7: R-182, R-183;
C.2.5).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.sip.headers import HeaderError
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.refer import (
    SIPFRAG_CONTENT_TYPE,
    IncomingRefer,
    IReferHandler,
    OutgoingRefer,
    ReferAgent,
    ReferProgress,
    parseReferSub,
    parseSipfrag,
    sipfrag,
)
from stoxgw.sip.subscription import ISubscriptionHandler, SIPEvents, SubscriptionReason
from stoxgw.sip.uri import contactIsFocus, parseNameAddr
from stoxgw.sip.useragent import IDialogUsageHandler, IRequestHandler, SIPError
from tests.sip.test_subscription import EventsMixin
from tests.sip.test_useragent import PEER, InviteRecorder, request


@implementer(IReferHandler)
class ReferRecorder:
    """
    Keeps REFERs; accepts them when told.
    """

    def __init__(self, accept: bool = True, status: int | None = None) -> None:
        self.refers: list[IncomingRefer] = []
        self.progress: list[ReferProgress] = []
        self.accept = accept
        self.status = status
        self.isfocus = False

    def referReceived(self, refer: IncomingRefer) -> None:
        self.refers.append(refer)
        if self.accept:
            self.progress.append(refer.accept(self.status, isfocus=self.isfocus))
        else:
            refer.reject(603)


class ReferMixin(EventsMixin):
    """
    L{EventsMixin} plus a L{ReferAgent}.
    """

    def setUp(self) -> None:
        super().setUp()
        self.handler = ReferRecorder()
        self.agent = ReferAgent(self.events, self.handler)

    def refer(
        self,
        referTo: str = "<sip:benvolio@example.com>",
        extra: str = "",
        **kwargs: object,
    ) -> None:
        self.receive(
            request(
                "REFER",
                extra=(f"Refer-To: {referTo}\r\n" if referTo else "") + extra,
                **kwargs,  # type: ignore[arg-type]
            )
        )


class RecipientTests(ReferMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    RFC 3515 section 2.4: the REFER recipient.
    """

    def test_interfaces(self) -> None:
        """
        The classes provide their interfaces.
        """
        self.assertTrue(verifyObject(IRequestHandler, self.agent))
        self.assertTrue(verifyObject(IDialogUsageHandler, self.agent))
        self.assertTrue(verifyObject(IReferHandler, ReferRecorder()))
        self.assertTrue(
            verifyObject(
                ISubscriptionHandler,
                OutgoingRefer(SIPRequest("REFER", parseNameAddr("<sip:a@b>").uri)),
            )
        )

    def test_acceptOutOfDialog(self) -> None:
        """
        RFC 3515 2.4.2, 2.4.4, 2.4.5, R-182: 202 Accepted with a Contact,
        then a NOTIFY in the new dialog: Event refer, active, sipfrag
        C{SIP/2.0 100 Trying}; a final status terminates with noresource.
        """
        self.refer(extra='Referred-By: "Romeo" <sip:romeo@example.org>\r\n')
        [response], [(notify, address)] = self.split()
        self.assertEqual(response.status, 202)
        assert response.contact is not None
        self.assertFalse(response.contact.addresses[0].isFocus)
        self.assertEqual(address, PEER)
        self.assertEqual(notify.header("Event"), "refer")
        self.assertTrue(
            (notify.header("Subscription-State") or "").startswith("active;expires=")
        )
        self.assertEqual(notify.header("Content-Type"), SIPFRAG_CONTENT_TYPE)
        self.assertEqual(notify.body, b"SIP/2.0 100 Trying\r\n")
        self.assertEqual(notify.fromAddress.tag, response.toAddress.tag)
        [refer] = self.handler.refers
        self.assertEqual(str(refer.referTo.uri), "sip:benvolio@example.com")
        self.assertEqual(refer.referTo.method, "INVITE")
        assert refer.referredBy is not None
        self.assertEqual(refer.referredBy.displayName, "Romeo")
        self.answer(notify)
        [progress] = self.handler.progress
        progress.progress(180)
        _, [(notify, _)] = self.split()
        self.assertEqual(notify.body, b"SIP/2.0 180 Ringing\r\n")
        self.answer(notify)
        progress.progress(200)
        _, [(notify, _)] = self.split()
        self.assertEqual(
            notify.header("Subscription-State"), "terminated;reason=noresource"
        )
        self.assertEqual(parseSipfrag(notify.body), (200, "OK"))
        self.assertFalse(progress.active)
        self.assertEqual(self.events.dialogs, {})

    def test_acceptAsFocus(self) -> None:
        """
        RFC 4579 5.5, RFC 7702 5.3 example 8: a handler answering as the
        conference focus puts C{isfocus} on the Contact of the 202 (and of
        the dialog the NOTIFYs come from).
        """
        self.handler.isfocus = True
        self.refer()
        [response], [(notify, _)] = self.split()
        self.assertEqual(response.status, 202)
        self.assertTrue(contactIsFocus(response.header("Contact")))
        self.assertTrue(contactIsFocus(notify.header("Contact")))

    def test_accept200AndFinish(self) -> None:
        """
        RFC 7702 6.5 (SPEC C.2.5): 200 OK, and the implicit subscription
        ended with the first NOTIFY (terminated;reason=noresource, 100
        Trying).
        """
        self.handler.status = 200
        self.refer()
        [response], [(notify, _)] = self.split()
        self.assertEqual(response.status, 200)
        self.handler.progress[0].finish()
        self.assertEqual(self.split(), ([], []))
        self.answer(notify)
        _, [(final, _)] = self.split()
        self.assertEqual(
            final.header("Subscription-State"), "terminated;reason=noresource"
        )
        self.assertEqual(final.body, b"SIP/2.0 100 Trying\r\n")

    def test_referSubFalse(self) -> None:
        """
        RFC 4488 4: C{Refer-Sub: false} -> the 2xx says C{Refer-Sub:
        false} (and Supported: norefersub), no NOTIFY, no dialog.
        """
        self.refer(extra="Refer-Sub: false\r\n")
        [response], requests = self.split()
        self.assertEqual(response.status, 202)
        self.assertEqual(response.header("Refer-Sub"), "false")
        self.assertEqual(response.header("Supported"), "norefersub")
        self.assertEqual(requests, [])
        self.assertFalse(self.handler.refers[0].referSub)
        self.handler.progress[0].progress(200)
        self.assertEqual(self.split(), ([], []))
        self.assertEqual(self.events.dialogs, {})

    def test_referToParsing(self) -> None:
        """
        RFC 3515 2.1, 2.2: the method parameter and URI headers of
        Refer-To; compact form C{r}.
        """
        self.receive(
            request(
                "REFER",
                extra="r: <sip:room@192.0.2.1;method=BYE?Replaces=abc%40x>\r\n",
            )
        )
        [refer] = self.handler.refers
        self.assertEqual(refer.referTo.method, "BYE")
        self.assertEqual(refer.referTo.uriHeaders, (("Replaces", "abc@x"),))

    def test_badRefer400(self) -> None:
        """
        R-182, RFC 3515 2.4.1: no Refer-To, two Refer-Tos, a bad
        Refer-Sub: 400.
        """
        self.refer("")
        self.refer(
            "<sip:a@example.com>",
            extra="Refer-To: <sip:b@example.com>\r\n",
            branch="z9hG4bKr2",
            callID="c2",
        )
        self.refer(extra="Refer-Sub: maybe\r\n", branch="z9hG4bKr3", callID="c3")
        responses, _ = self.split()
        self.assertEqual([r.status for r in responses], [400, 400, 400])
        self.assertEqual(self.handler.refers, [])

    def test_reject(self) -> None:
        """
        The handler refuses: no subscription.
        """
        self.handler.accept = False
        self.refer()
        [response], requests = self.split()
        self.assertEqual((response.status, requests), (603, []))

    def test_inInviteDialog(self) -> None:
        """
        RFC 4579 5.5 / RFC 3515 2.4.6: a REFER inside the INVITE dialog;
        the NOTIFYs carry C{Event: refer;id=<CSeq>} in that dialog.
        """
        invites = InviteRecorder("accept")
        self.ua.addHandler("INVITE", invites)
        self.receive(request("INVITE", branch="z9hG4bKi1"))
        self.split()
        [dialog] = invites.dialogs
        self.refer(cseq=7, toTag=dialog.localTag, branch="z9hG4bKr2")
        [response], [(notify, _)] = self.split()
        self.assertEqual(response.status, 202)
        self.assertEqual(notify.header("Event"), "refer;id=7")
        self.assertEqual(notify.fromAddress.tag, dialog.localTag)
        self.answer(notify)
        # A refresh of the implicit subscription works; a new SUBSCRIBE
        # to "refer" does not.
        self.receive(
            request(
                "SUBSCRIBE",
                cseq=8,
                toTag=dialog.localTag,
                branch="z9hG4bKs1",
                extra="Event: refer;id=7\r\nExpires: 0\r\n",
            )
        )
        [response], [(notify, _)] = self.split()
        self.assertEqual(response.status, 200)
        self.assertIn("terminated", notify.header("Subscription-State") or "")
        self.receive(
            request(
                "SUBSCRIBE",
                cseq=9,
                toTag=dialog.localTag,
                branch="z9hG4bKs2",
                extra="Event: refer\r\nExpires: 60\r\n",
            )
        )
        [response], _ = self.split()
        self.assertEqual(response.status, 489)

    def test_noHandler(self) -> None:
        """
        Without an L{IReferHandler} REFER is not allowed (405).
        """
        self.makeUA()
        ReferAgent(SIPEvents(self.ua))
        self.refer()
        [response], _ = self.split()
        self.assertEqual(response.status, 405)

    def test_helpers(self) -> None:
        """
        sipfrag bodies (RFC 3420) and Refer-Sub values (RFC 4488).
        """
        self.assertEqual(sipfrag(486), b"SIP/2.0 486 Busy Here\r\n")
        self.assertEqual(
            parseSipfrag(b"SIP/2.0 603 Declined\r\nX: y\r\n"), (603, "Declined")
        )
        self.assertIsNone(parseSipfrag(b"hello"))
        self.assertIs(parseReferSub("False;x=1"), False)
        self.assertIs(parseReferSub("true"), True)
        self.assertIsNone(parseReferSub(None))
        self.assertRaises(HeaderError, parseReferSub, "no")


class SenderTests(ReferMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    RFC 3515 section 2.4.1, 2.4.4: the REFER issuer.
    """

    target = parseNameAddr("<sip:focus@198.51.100.7:5070>")
    me = parseNameAddr("<sip:juliet@example.com>")

    def notify(
        self, refer: SIPRequest, state: str, body: bytes, cseq: int, branch: str
    ) -> None:
        lines = [
            "NOTIFY sip:juliet@192.0.2.1:5060 SIP/2.0",
            f"Via: SIP/2.0/UDP {PEER[0]}:{PEER[1]};branch={branch}",
            "Max-Forwards: 70",
            "From: <sip:focus@198.51.100.7>;tag=peer",
            f"To: <sip:juliet@example.com>;tag={refer.fromAddress.tag}",
            f"Call-ID: {refer.callID}",
            f"CSeq: {cseq} NOTIFY",
            f"Contact: <sip:focus@{PEER[0]}:{PEER[1]}>",
            f"Event: refer;id={refer.cseq.number}",
            f"Subscription-State: {state}",
            f"Content-Type: {SIPFRAG_CONTENT_TYPE}",
            f"Content-Length: {len(body)}",
        ]
        self.receive(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def test_referOutOfDialog(self) -> None:
        """
        R-183: REFER to the conference URI with Refer-To = invitee; the
        202 and the sipfrag NOTIFYs (one before the 202) are collected;
        C{finished} fires with the final status.
        """
        d = self.agent.refer(
            self.target,
            parseNameAddr("<sip:benvolio@example.com>"),
            fromAddress=self.me,
        )
        _, [(sent, _)] = self.split()
        self.assertEqual(sent.method, "REFER")
        self.assertEqual(
            sent.headers.getLines("Refer-To"), ["<sip:benvolio@example.com>"]
        )
        self.assertIsNotNone(sent.contact)
        self.notify(sent, "active;expires=60", sipfrag(100), 1, "z9hG4bKn1")
        self.receive(
            sent.makeResponse(
                202,
                toTag="peer",
                extraHeaders=[("Contact", f"<sip:focus@{PEER[0]}:{PEER[1]}>")],
            )
        )
        outgoing = self.successResultOf(d)
        self.notify(sent, "terminated;reason=noresource", sipfrag(200), 2, "z9hG4bKn2")
        responses, _ = self.split()
        self.assertEqual([r.status for r in responses], [200, 200])
        self.assertEqual(outgoing.statuses, [(100, "Trying"), (200, "OK")])
        self.assertEqual(self.successResultOf(outgoing.finished), 200)
        self.assertEqual(self.events.dialogs, {})

    def test_referSubFalse(self) -> None:
        """
        RFC 4488: Refer-Sub false sent; a 2xx with Refer-Sub false means
        no subscription.
        """
        d = self.agent.refer(
            self.target,
            parseNameAddr("<sip:b@example.com>"),
            fromAddress=self.me,
            referSub=False,
        )
        _, [(sent, _)] = self.split()
        self.assertEqual(sent.header("Refer-Sub"), "false")
        self.receive(
            sent.makeResponse(202, toTag="peer", extraHeaders=[("Refer-Sub", "false")])
        )
        outgoing = self.successResultOf(d)
        self.assertIsNone(outgoing.subscription)
        self.assertIsNone(self.successResultOf(outgoing.finished))
        self.assertEqual(self.usageTimers(), [])

    def test_referRejected(self) -> None:
        """
        A non-2xx fails with L{SIPError}.
        """
        d = self.agent.refer(
            self.target, parseNameAddr("<sip:b@example.com>"), fromAddress=self.me
        )
        _, [(sent, _)] = self.split()
        self.receive(sent.makeResponse(403, toTag="peer"))
        self.assertEqual(self.failureResultOf(d, SIPError).value.status, 403)
        self.failureResultOf(
            self.agent.refer(self.target, parseNameAddr("<sip:b@x>")), ValueError
        )

    def test_referInDialogBetweenAgents(self) -> None:
        """
        Our REFER in an INVITE dialog to our own recipient (one UA
        looped through the fake socket is not possible, so the peer side
        is played by hand): the NOTIFY with C{id} = the REFER's CSeq
        matches.
        """
        invites = InviteRecorder("accept")
        self.ua.addHandler("INVITE", invites)
        self.receive(request("INVITE", branch="z9hG4bKi1"))
        self.split()
        [dialog] = invites.dialogs
        d = self.agent.refer(dialog, parseNameAddr("<sip:b@example.com>"))
        _, [(sent, _)] = self.split()
        self.assertEqual(sent.toAddress.tag, "alicetag")
        self.receive(sent.makeResponse(202))
        outgoing = self.successResultOf(d)
        self.receive(
            request(
                "NOTIFY",
                cseq=2,
                toTag=dialog.localTag,
                branch="z9hG4bKn1",
                extra=(
                    f"Event: refer;id={sent.cseq.number}\r\n"
                    "Subscription-State: terminated;reason=noresource\r\n"
                    f"Content-Type: {SIPFRAG_CONTENT_TYPE}\r\n"
                ),
                body="SIP/2.0 486 Busy Here\r\n",
            )
        )
        [response], _ = self.split()
        self.assertEqual(response.status, 200)
        self.assertEqual(self.successResultOf(outgoing.finished), 486)
        assert outgoing.subscription is not None
        self.assertEqual(outgoing.subscription.reason, SubscriptionReason.NORESOURCE)
        self.assertIn(dialog.id, self.ua.dialogs)
