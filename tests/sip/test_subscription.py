# -*- test-case-name: tests.sip.test_subscription -*-
"""
Tests for L{stoxgw.sip.subscription}: RFC 6665 subscriptions on a UA core
over a fake UDP socket and a clock (no sockets, no sleeps), both roles,
and the RFC 4575 conference package helpers (SPEC D.7: R-176, R-177,
R-180, R-181).
"""

from __future__ import annotations

from dataclasses import replace

from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.formats.conferenceinfo import (
    CONFERENCE_INFO_CONTENT_TYPE,
    ConferenceDescription,
    ConferenceInfo,
    DisconnectionMethod,
    ElementState,
    Endpoint,
    EndpointStatus,
    MergeOutcome,
    User,
    Users,
    applyNotification,
)
from stoxgw.sip.dialog import DIALOG_TRANSITIONS
from stoxgw.sip.headers import Event, SubscriptionState
from stoxgw.sip.invitedialog import InviteDialog
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.conference import MAX_WAITING_PARTIALS
from stoxgw.sip.subscription import (
    SUBSCRIPTION_TRANSITIONS,
    ClientSubscription,
    ConferenceNotifier,
    ConferencePackage,
    ConferenceWatcher,
    IEventPackage,
    ISubscriptionHandler,
    NotifierSubscription,
    NotifyBody,
    SIPEvents,
    SubscriptionReason,
    SubscriptionSettings,
    SubscriptionStatus,
)
from stoxgw.sip.uri import contactIsFocus, parseNameAddr
from stoxgw.sip.useragent import IDialogUsageHandler, IRequestHandler, SIPError
from tests.sip.test_useragent import PEER, PROXY, InviteRecorder, UAMixin, request

ROOM = "sip:room@192.0.2.1"


def conference(*nicks: str, subject: str = "Today in Verona") -> ConferenceInfo:
    """
    A full conference-info state with one user per nick (RFC 7702
    convention: entity = room URI with C{gr=nick}).
    """
    return ConferenceInfo(
        ROOM,
        description=ConferenceDescription(subject=subject),
        users=Users(
            tuple(User(f"{ROOM};gr={n}", displayText=n, nickname=n) for n in nicks)
        ),
    )


@implementer(IEventPackage)
class RecordingPackage:
    """
    A package that accepts everything, serves a fixed body and records.
    """

    name = "test"
    defaultExpires = 300
    contentTypes = ("text/plain",)

    def __init__(self, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.started: list[NotifierSubscription] = []
        self.ended: list[SubscriptionReason] = []

    def authorize(self, request: object) -> int | None:
        return self.refuse

    def subscriptionStarted(self, subscription: NotifierSubscription) -> None:
        self.started.append(subscription)

    def fullState(self, subscription: NotifierSubscription) -> NotifyBody | None:
        return NotifyBody(b"state", "text/plain")

    def subscriptionEnded(
        self, subscription: NotifierSubscription, reason: SubscriptionReason
    ) -> None:
        self.ended.append(reason)


@implementer(ISubscriptionHandler)
class RecordingHandler:
    """
    Records NOTIFYs and the end of a client subscription.
    """

    def __init__(self) -> None:
        self.notifies: list[SIPRequest] = []
        self.ended: list[SubscriptionReason] = []

    def notifyReceived(
        self, subscription: ClientSubscription, request: SIPRequest
    ) -> None:
        self.notifies.append(request)

    def subscriptionEnded(
        self, subscription: ClientSubscription, reason: SubscriptionReason
    ) -> None:
        self.ended.append(reason)


class EventsMixin(UAMixin):
    """
    A UA with L{SIPEvents}, a conference notifier for L{ROOM} and the
    C{test} package.
    """

    def setUp(self) -> None:
        self.makeUA()
        self.events = SIPEvents(
            self.ua, SubscriptionSettings(minExpires=60, maxExpires=3600)
        )
        self.conference = ConferenceNotifier(conference("Romeo", "JuliC"))
        self.events.addPackage(
            ConferencePackage(
                lambda r: (
                    self.conference if getattr(r.uri, "user", None) == "room" else None
                )
            )
        )
        self.package = RecordingPackage()
        self.events.addPackage(self.package)

    def subscribe(
        self,
        expires: int | None = 600,
        event: str = "conference",
        cseq: int = 1,
        toTag: str | None = None,
        branch: str = "z9hG4bKs1",
        extra: str = "",
        **kwargs: object,
    ) -> None:
        headers = f"Event: {event}\r\n" + (
            f"Expires: {expires}\r\n" if expires is not None else ""
        )
        self.receive(
            request(
                "SUBSCRIBE",
                cseq=cseq,
                toTag=toTag,
                branch=branch,
                extra=headers + extra,
                **kwargs,  # type: ignore[arg-type]
            )
        )

    def split(
        self,
    ) -> tuple[list[SIPResponse], list[tuple[SIPRequest, tuple[str, int]]]]:
        """
        What went out, as responses and requests (with destinations).
        """
        responses: list[SIPResponse] = []
        requests: list[tuple[SIPRequest, tuple[str, int]]] = []
        for message, address in self.sent():
            if isinstance(message, SIPResponse):
                if message.status != 100:
                    responses.append(message)
            else:
                requests.append((message, address))
        return responses, requests

    def usageTimers(self) -> list[object]:
        """
        Pending delayed calls other than transaction timers.
        """
        return [
            c for c in self.clock.getDelayedCalls() if "_Transaction" not in repr(c)
        ]

    def answer(self, sent: SIPRequest, status: int = 200, toTag: str = "peer") -> None:
        """
        The peer answers one of our requests.
        """
        self.receive(sent.makeResponse(status, toTag=toTag))


class NotifierTests(EventsMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    RFC 6665 section 4.2: the notifier.
    """

    def test_interfaces(self) -> None:
        """
        The classes provide their interfaces; the state tables are closed.
        """
        self.assertTrue(verifyObject(IRequestHandler, self.events))
        self.assertTrue(verifyObject(IDialogUsageHandler, self.events))
        self.assertTrue(verifyObject(IEventPackage, ConferencePackage(lambda r: None)))
        self.assertTrue(verifyObject(IEventPackage, RecordingPackage()))
        self.assertTrue(verifyObject(ISubscriptionHandler, ConferenceWatcher()))
        self.assertEqual(set(SUBSCRIPTION_TRANSITIONS), set(SubscriptionStatus))
        self.assertEqual(SUBSCRIPTION_TRANSITIONS[SubscriptionStatus.TERMINATED], set())
        self.assertTrue(DIALOG_TRANSITIONS)

    def test_subscribeAcceptedAndNotified(self) -> None:
        """
        RFC 6665 4.2.1.1, 4.2.1.2, R-181, R-176, R-177: a SUBSCRIBE for
        C{conference} gets 200 with Expires, Contact and Allow-Events, and a
        NOTIFY follows at once to the subscriber's Contact, in the new
        dialog, with the Event echoed, C{active;expires=600} and a full
        conference-info document with version 1.
        """
        self.subscribe(600)
        [response], [(notify, address)] = self.split()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("Expires"), "600")
        self.assertEqual(response.header("Allow-Events"), "conference, test")
        self.assertIsNotNone(response.contact)
        self.assertEqual(address, PEER)
        self.assertEqual(notify.method, "NOTIFY")
        self.assertEqual(str(notify.uri), f"sip:alice@{PEER[0]}:{PEER[1]}")
        self.assertEqual(notify.callID, "call-1@example.com")
        self.assertEqual(notify.toAddress.tag, "alicetag")
        self.assertEqual(notify.fromAddress.tag, response.toAddress.tag)
        self.assertEqual(notify.header("Event"), "conference")
        state = SubscriptionState.parse(notify.header("Subscription-State") or "")
        self.assertEqual((state.state, state.expires), ("active", 600))
        self.assertEqual(notify.header("Content-Type"), CONFERENCE_INFO_CONTENT_TYPE)
        document = ConferenceInfo.parse(notify.body)
        self.assertEqual(document.state, ElementState.FULL)
        self.assertEqual(document.version, 1)
        self.assertIsNotNone(document.description)
        self.assertEqual(len(document.userList), 2)
        [subscription] = self.conference.subscriptions
        self.assertIs(subscription.status, SubscriptionStatus.ACTIVE)

    def test_focusContact(self) -> None:
        """
        RFC 7702 5.3 example 8: a conference package served as the focus
        (C{isfocus=True}) answers with an C{isfocus} Contact, in the 200 and
        in the NOTIFYs' dialog; by default the Contact has none.
        """
        self.subscribe(600)
        [response], _ = self.split()
        self.assertFalse(contactIsFocus(response.header("Contact")))
        self.events.addPackage(
            ConferencePackage(lambda r: self.conference, isfocus=True)
        )
        self.subscribe(600, callID="call-2", branch="z9hG4bKs2")
        [response], [(notify, _)] = self.split()
        self.assertEqual(response.status, 200)
        self.assertTrue(contactIsFocus(response.header("Contact")))
        self.assertTrue(contactIsFocus(notify.header("Contact")))

    def test_transportToldOfDialogs(self) -> None:
        """
        Issue #13: a subscription's dialog is started at the transport
        while it hosts a usage (its connection is not closed as idle) and
        ended with the last one; one inside an INVITE dialog is a second
        usage of that Call-ID, which outlives the INVITE usage.
        """
        calls: list[tuple[str, str]] = []
        self.patch(
            self.transport,
            "dialogStarted",
            lambda callID, flow=None: calls.append(("started", callID)),
        )
        self.patch(
            self.transport,
            "dialogEnded",
            lambda callID: calls.append(("ended", callID)),
        )
        self.subscribe(600, event="test")
        [response], [(notify, _)] = self.split()
        self.answer(notify)
        self.assertEqual(calls, [("started", "call-1@example.com")])
        self.subscribe(
            0, event="test", cseq=2, toTag=response.toAddress.tag, branch="z9hG4bKs2"
        )
        self.assertEqual(calls[1:], [("ended", "call-1@example.com")])
        del calls[:]
        invites = InviteRecorder("accept")
        self.ua.addHandler("INVITE", invites)
        self.receive(request("INVITE", branch="z9hG4bKi1", callID="c2"))
        [dialog] = invites.dialogs
        self.subscribe(
            600, cseq=2, toTag=dialog.localTag, branch="z9hG4bKs3", callID="c2"
        )
        self.receive(
            request("BYE", cseq=3, toTag=dialog.localTag, branch="z9hG4bKb", callID="c2")
        )
        self.assertEqual(calls, [("started", "c2"), ("started", "c2"), ("ended", "c2")])

    def test_eventIdEchoed(self) -> None:
        """
        RFC 6665 8.2.1: the NOTIFY carries the SUBSCRIBE's Event C{id}.
        """
        self.subscribe(600, event="conference;id=42")
        _, [(notify, _)] = self.split()
        self.assertEqual(notify.header("Event"), "conference;id=42")

    def test_expiresShortened(self) -> None:
        """
        RFC 6665 4.2.1.1: the granted duration may be shorter, never
        longer; without Expires the package default applies (3.1.1).
        """
        self.subscribe(100000)
        [response], [(notify, _)] = self.split()
        self.assertEqual(response.header("Expires"), "3600")
        self.assertIn("expires=3600", notify.header("Subscription-State") or "")
        self.subscribe(None, event="test", callID="call-2", branch="z9hG4bKs2")
        [response], _ = self.split()
        self.assertEqual(response.header("Expires"), "300")

    def test_recordRouteNotifyFollowsRouteSet(self) -> None:
        """
        RFC 3261 12.1.1, 12.2.1.1 (PEERS.md: Kamailio drops in-dialog
        requests that ignore it): the 200 copies Record-Route and the
        NOTIFY goes to the proxy with a Route header.
        """
        self.subscribe(600, recordRoute=True)
        [response], [(notify, address)] = self.split()
        self.assertEqual(len(response.recordRoute), 1)
        self.assertEqual(address, PROXY)
        self.assertEqual(
            [str(r.uri) for r in notify.route], [f"sip:{PROXY[0]}:{PROXY[1]};lr"]
        )

    def test_unknownPackage489(self) -> None:
        """
        RFC 6665 4.2.1.1: an unknown package gets 489 with Allow-Events.
        """
        self.subscribe(600, event="presence")
        [response], requests = self.split()
        self.assertEqual(response.status, 489)
        self.assertEqual(response.header("Allow-Events"), "conference, test")
        self.assertEqual(requests, [])

    def test_tooBrief423(self) -> None:
        """
        RFC 6665 4.2.1.1: 0 < Expires < Min-Expires gets 423 with
        Min-Expires.
        """
        self.subscribe(10)
        [response], requests = self.split()
        self.assertEqual(response.status, 423)
        self.assertEqual(response.header("Min-Expires"), "60")
        self.assertEqual(requests, [])

    def test_badRequests(self) -> None:
        """
        No Event, malformed Expires, no Contact: 400.
        """
        self.receive(request("SUBSCRIBE"))
        self.subscribe("soon", branch="z9hG4bKs2", callID="c2")  # type: ignore[arg-type]
        raw = request(
            "SUBSCRIBE", branch="z9hG4bKs3", callID="c3", extra="Event: test\r\n"
        )
        self.receive(raw.replace(b"Contact: <sip:alice@198.51.100.7:5070>\r\n", b""))
        responses, _ = self.split()
        self.assertEqual([r.status for r in responses], [400, 400, 400])

    def test_notAcceptable406(self) -> None:
        """
        RFC 3261 21.4.7: an Accept without the package's type gets 406.
        """
        self.subscribe(600, extra="Accept: application/pidf+xml\r\n")
        [response], _ = self.split()
        self.assertEqual(response.status, 406)

    def test_unknownResource404(self) -> None:
        """
        RFC 6665 4.2.1.3: the package refuses (no such conference).
        """
        self.subscribe(600, uri="sip:nobody@192.0.2.1")
        [response], _ = self.split()
        self.assertEqual(response.status, 404)

    def test_refreshSendsFullState(self) -> None:
        """
        RFC 6665 4.2.1.4: a re-SUBSCRIBE in the dialog updates the
        expiry and triggers a NOTIFY with full state (version 2).
        """
        self.subscribe(600)
        [response], [(notify, _)] = self.split()
        self.answer(notify)
        tag = response.toAddress.tag
        self.clock.advance(100)
        self.subscribe(1200, cseq=2, toTag=tag, branch="z9hG4bKs2")
        [response], [(notify, _)] = self.split()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("Expires"), "1200")
        self.assertIn("expires=1200", notify.header("Subscription-State") or "")
        document = ConferenceInfo.parse(notify.body)
        self.assertEqual((document.state, document.version), (ElementState.FULL, 2))

    def test_unsubscribe(self) -> None:
        """
        RFC 6665 4.2.1.4: Expires 0 gets 200 and a final NOTIFY
        C{terminated;reason=timeout}; the dialog is gone (481 after).
        """
        self.subscribe(600)
        [response], [(notify, _)] = self.split()
        self.answer(notify)
        tag = response.toAddress.tag
        self.subscribe(0, cseq=2, toTag=tag, branch="z9hG4bKs2")
        [response], [(notify, _)] = self.split()
        self.assertEqual((response.status, response.header("Expires")), (200, "0"))
        self.assertEqual(
            notify.header("Subscription-State"), "terminated;reason=timeout"
        )
        self.assertEqual(self.conference.subscriptions, [])
        self.assertEqual(self.events.dialogs, {})
        self.subscribe(600, cseq=3, toTag=tag, branch="z9hG4bKs3")
        [response], _ = self.split()
        self.assertEqual(response.status, 481)

    def test_fetch(self) -> None:
        """
        RFC 6665 4.4.3: an initial SUBSCRIBE with Expires 0 fetches the
        state: 200 and one terminated NOTIFY with the body.
        """
        self.subscribe(0, event="test")
        [response], [(notify, _)] = self.split()
        self.assertEqual(response.status, 200)
        self.assertEqual(
            notify.header("Subscription-State"), "terminated;reason=timeout"
        )
        self.assertEqual(notify.body, b"state")
        self.assertEqual(self.events.dialogs, {})

    def test_expiry(self) -> None:
        """
        RFC 6665 4.2.1.4: without refresh the subscription ends with
        C{terminated;reason=timeout}; the package is told.
        """
        self.subscribe(600, event="test")
        _, [(notify, _)] = self.split()
        self.answer(notify)
        self.clock.advance(599)
        self.assertEqual(self.split(), ([], []))
        self.clock.advance(1)
        _, [(notify, _)] = self.split()
        self.assertEqual(
            notify.header("Subscription-State"), "terminated;reason=timeout"
        )
        self.assertEqual(self.package.ended, [SubscriptionReason.TIMEOUT])

    def test_notifierTerminates(self) -> None:
        """
        RFC 6665 4.1.3: the notifier ends it with a reason (noresource);
        the expiry timer stops.
        """
        self.subscribe(600, event="test")
        _, [(notify, _)] = self.split()
        self.answer(notify)
        [subscription] = self.package.started
        subscription.terminate(SubscriptionReason.NORESOURCE)
        _, [(notify, _)] = self.split()
        self.answer(notify)
        self.assertEqual(
            notify.header("Subscription-State"), "terminated;reason=noresource"
        )
        self.assertIsNone(subscription.terminate())
        self.assertRaises(Exception, subscription.notify)
        self.clock.advance(1000)
        self.assertEqual(self.split(), ([], []))

    def test_notifyFailureRemoves(self) -> None:
        """
        RFC 6665 4.2.2: a NOTIFY answered 481 removes the subscription
        (no further NOTIFY); so does a NOTIFY timeout (408).
        """
        self.subscribe(600, event="test")
        _, [(notify, _)] = self.split()
        self.answer(notify, 481)
        self.assertEqual(self.package.ended, [SubscriptionReason.NOTIFY_FAILED])
        self.assertEqual(self.events.dialogs, {})
        self.subscribe(600, event="test", callID="c2", branch="z9hG4bKs2")
        self.split()
        self.clock.advance(32)
        self.assertEqual(self.package.ended[-1], SubscriptionReason.NOTIFY_FAILED)

    def test_conferenceUpdatePartial(self) -> None:
        """
        R-176, R-213: a change gives each subscriber a partial document
        with version +1; a nick change is a deleted user plus a new one.
        """
        self.subscribe(600)
        _, [(notify, _)] = self.split()
        self.answer(notify)
        self.conference.update(conference("Romeo", "Juliet"))
        _, [(notify, _)] = self.split()
        document = ConferenceInfo.parse(notify.body)
        self.assertEqual((document.state, document.version), (ElementState.PARTIAL, 2))
        states = {u.entity: u.state for u in document.userList}
        self.assertEqual(
            states,
            {
                f"{ROOM};gr=JuliC": ElementState.DELETED,
                f"{ROOM};gr=Juliet": ElementState.FULL,
            },
        )
        self.conference.update(conference("Romeo", "Juliet"))
        self.assertEqual(self.split(), ([], []))
        self.answer(notify)
        self.conference.close()
        _, [(notify, _)] = self.split()
        self.assertIn("noresource", notify.header("Subscription-State") or "")

    def receiveAll(
        self, held: ConferenceInfo
    ) -> tuple[ConferenceInfo, list[ConferenceInfo]]:
        """
        Answer each NOTIFY as it comes, merging its document into C{held}
        as a subscriber would (every merge must apply: no gap).

        @return: The merged state and the documents, in order.
        """
        documents = []
        while True:
            _, requests = self.split()
            if not requests:
                return held, documents
            [(notify, _)] = requests
            document = ConferenceInfo.parse(notify.body)
            documents.append(document)
            result = applyNotification(held, document)
            self.assertIs(result.outcome, MergeOutcome.APPLIED)
            assert result.state is not None
            held = result.state
            self.answer(notify)

    def test_partialNotifiesOneAtATime(self) -> None:
        """
        RFC 4575 4.4, R-176 (issue #11): while a partial NOTIFY waits for
        its answer, a kick (the endpoint C{booted}, then the user deleted)
        sends nothing; once it is answered each step follows in its own
        NOTIFY, one at a time, so the versions arrive consecutive even over
        UDP, the subscriber's merge never sees a gap, and the C{booted}
        step is not lost.
        """
        self.subscribe(600)
        _, [(notify, _)] = self.split()
        held = ConferenceInfo.parse(notify.body)
        self.answer(notify)
        self.conference.update(conference("Romeo", "JuliC", "Tybalt"))
        _, [(inFlight, _)] = self.split()
        booted = conference("Romeo", "Tybalt")
        booted = replace(
            booted,
            users=Users(
                booted.userList
                + (
                    User(
                        f"{ROOM};gr=JuliC",
                        endpoints=(
                            Endpoint(
                                f"{ROOM};gr=JuliC",
                                status=EndpointStatus.DISCONNECTED,
                                disconnectionMethod=DisconnectionMethod.BOOTED,
                            ),
                        ),
                    ),
                )
            ),
        )
        self.conference.update(booted)
        self.conference.update(conference("Romeo", "Tybalt"))
        self.assertEqual(self.split(), ([], []))
        self.answer(inFlight)
        held, documents = self.receiveAll(
            applyNotification(held, ConferenceInfo.parse(inFlight.body)).state
            or held
        )
        self.assertEqual(
            [(d.state, d.version) for d in documents],
            [(ElementState.PARTIAL, 3), (ElementState.PARTIAL, 4)],
        )
        [kicked] = documents[0].userList
        [endpoint] = kicked.endpoints
        self.assertIs(endpoint.disconnectionMethod, DisconnectionMethod.BOOTED)
        [deleted] = documents[1].userList
        self.assertEqual(
            (deleted.entity, deleted.state), (f"{ROOM};gr=JuliC", ElementState.DELETED)
        )
        self.assertEqual(
            [u.entity for u in held.userList], [f"{ROOM};gr=Romeo", f"{ROOM};gr=Tybalt"]
        )

    def test_manyChangesFold(self) -> None:
        """
        Beyond C{MAX_WAITING_PARTIALS} changes waiting behind one NOTIFY,
        the later ones fold into the last waiting partial document: fewer
        NOTIFYs, still consecutive, ending in the newest state.
        """
        self.subscribe(600)
        _, [(notify, _)] = self.split()
        held = ConferenceInfo.parse(notify.body)
        self.answer(notify)
        nicks = [f"N{n}" for n in range(MAX_WAITING_PARTIALS + 10)]
        for count in range(1, len(nicks) + 1):
            self.conference.update(conference("Romeo", *nicks[:count]))
        held, documents = self.receiveAll(held)
        self.assertEqual(len(documents), MAX_WAITING_PARTIALS + 1)
        self.assertEqual(
            [d.version for d in documents], list(range(2, MAX_WAITING_PARTIALS + 3))
        )
        self.assertEqual(
            [u.entity for u in held.userList],
            [f"{ROOM};gr={n}" for n in ["Romeo", *nicks]],
        )

    def test_refreshWaitsForPartial(self) -> None:
        """
        A refresh's full state queued behind a partial NOTIFY is made when
        it is sent, after the partial one's version; a final NOTIFY drops
        what still waits and is sent once the one in flight is answered.
        """
        self.subscribe(600)
        [response], [(notify, _)] = self.split()
        self.answer(notify)
        tag = response.toAddress.tag
        self.conference.update(conference("Romeo"))
        _, [(partial, _)] = self.split()
        self.subscribe(600, cseq=2, toTag=tag, branch="z9hG4bKs2")
        self.conference.update(conference("Romeo", "Tybalt"))
        [response], requests = self.split()
        self.assertEqual((response.status, requests), (200, []))
        self.answer(partial)
        _, [(full, _)] = self.split()
        document = ConferenceInfo.parse(full.body)
        self.assertEqual((document.state, document.version), (ElementState.FULL, 3))
        self.conference.update(conference("Romeo"))
        self.conference.close()
        self.assertEqual(self.split(), ([], []))
        self.answer(full)
        _, [(final, _)] = self.split()
        self.assertEqual(
            final.header("Subscription-State"), "terminated;reason=noresource"
        )
        self.assertEqual(final.body, b"")

    def test_inInviteDialog(self) -> None:
        """
        RFC 7702 5.3 / RFC 5057: a SUBSCRIBE inside the INVITE dialog
        shares it (same tags, NOTIFY in it with the next CSeq), and
        survives the INVITE usage's BYE.
        """
        invites = InviteRecorder("accept")
        self.ua.addHandler("INVITE", invites)
        self.receive(request("INVITE", branch="z9hG4bKi1"))
        [ok], _ = self.split()
        self.receive(request("ACK", branch="z9hG4bKa2", toTag=ok.toAddress.tag))
        [dialog] = invites.dialogs
        tag = dialog.localTag
        self.subscribe(600, cseq=2, toTag=tag, branch="z9hG4bKs2")
        [response], [(notify, _)] = self.split()
        self.assertEqual(response.status, 200)
        self.assertEqual(notify.fromAddress.tag, tag)
        self.assertEqual(notify.cseq.number, dialog.localSeq)
        self.assertIs(self.events.dialogs[dialog.id], dialog)
        self.answer(notify)
        self.receive(request("BYE", cseq=3, toTag=tag, branch="z9hG4bKb1"))
        [bye], _ = self.split()
        self.assertEqual(bye.status, 200)
        self.assertNotIn(dialog.id, self.ua.dialogs)
        self.subscribe(0, cseq=4, toTag=tag, branch="z9hG4bKs3")
        [response], [(notify, _)] = self.split()
        self.assertEqual(response.status, 200)
        self.assertIn("terminated", notify.header("Subscription-State") or "")

    def test_oldCSeq500(self) -> None:
        """
        RFC 3261 12.2.2: an in-dialog SUBSCRIBE with an old CSeq gets 500.
        """
        self.subscribe(600, cseq=5)
        [response], _ = self.split()
        self.subscribe(600, cseq=5, toTag=response.toAddress.tag, branch="z9hG4bKs2")
        [response], _ = self.split()
        self.assertEqual(response.status, 500)

    def test_optionsAllowEvents(self) -> None:
        """
        RFC 6665 4.4.4: OPTIONS answers list the packages in Allow-Events,
        and SUBSCRIBE and NOTIFY (which our own subscriptions receive) in
        Allow.
        """
        self.receive(request("OPTIONS"))
        [response], _ = self.split()
        self.assertEqual(response.header("Allow-Events"), "conference, test")
        self.assertIn("SUBSCRIBE", response.header("Allow") or "")
        self.assertIn("NOTIFY", response.header("Allow") or "")

    def test_packageFailureLogged(self) -> None:
        """
        A package raising in fullState is logged; the NOTIFY goes
        without body.
        """

        class Broken(RecordingPackage):
            name = "broken"

            def fullState(
                self, subscription: NotifierSubscription
            ) -> NotifyBody | None:
                raise RuntimeError("bug")

        self.events.addPackage(Broken())
        with capturedLogs() as logs:
            self.subscribe(600, event="broken")
        _, [(notify, _)] = self.split()
        self.assertEqual(notify.body, b"")
        self.assertTrue(any(e.get("callID") == "call-1@example.com" for e in logs))
        self.flushLoggedErrors(RuntimeError)

    def test_shutdownAndClose(self) -> None:
        """
        shutdown ends served subscriptions with noresource; close drops
        everything and stops the timers.
        """
        self.subscribe(600)
        _, [(notify, _)] = self.split()
        self.answer(notify)
        self.events.shutdown()
        _, [(notify, _)] = self.split()
        self.assertIn("noresource", notify.header("Subscription-State") or "")
        self.subscribe(600, event="test", callID="c2", branch="z9hG4bKs2")
        self.split()
        self.events.close()
        self.assertEqual(self.events.dialogs, {})
        self.assertEqual(self.usageTimers(), [])


class SubscriberTests(EventsMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    RFC 6665 section 4.1: the subscriber.
    """

    target = parseNameAddr("<sip:focus@198.51.100.7:5070>")
    me = parseNameAddr("<sip:juliet@example.com>")

    def start(
        self, expires: int = 600, handler: object = None
    ) -> tuple[ClientSubscription, RecordingHandler, SIPRequest]:
        recorder = RecordingHandler()
        subscription = self.events.subscribe(
            self.target,
            "conference",
            expires,
            [CONFERENCE_INFO_CONTENT_TYPE],
            handler=handler or recorder,  # type: ignore[arg-type]
            fromAddress=self.me,
        )
        [(sent, address)] = self.split()[1]
        self.assertEqual(address, PEER)
        return subscription, recorder, sent

    def notify(
        self,
        subscribe: SIPRequest,
        state: str = "active;expires=600",
        body: bytes = b"",
        cseq: int = 1,
        event: str = "conference",
        fromTag: str = "peer",
        branch: str = "z9hG4bKn1",
        callID: str | None = None,
    ) -> None:
        """
        The notifier's NOTIFY for our SUBSCRIBE.
        """
        ourTag = subscribe.fromAddress.tag
        lines = [
            f"NOTIFY sip:juliet@192.0.2.1:5060 SIP/2.0",
            f"Via: SIP/2.0/UDP {PEER[0]}:{PEER[1]};branch={branch}",
            "Max-Forwards: 70",
            f"From: <sip:focus@198.51.100.7>;tag={fromTag}",
            f"To: <sip:juliet@example.com>;tag={ourTag}",
            f"Call-ID: {callID or subscribe.callID}",
            f"CSeq: {cseq} NOTIFY",
            f"Contact: <sip:focus@{PEER[0]}:{PEER[1]}>",
            f"Event: {event}",
        ]
        if state:
            lines.append(f"Subscription-State: {state}")
        if body:
            lines.append(f"Content-Type: {CONFERENCE_INFO_CONTENT_TYPE}")
        lines.append(f"Content-Length: {len(body)}")
        self.receive(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def ok(self, subscribe: SIPRequest, expires: int = 600, status: int = 200) -> None:
        response = subscribe.makeResponse(
            status,
            toTag="peer",
            extraHeaders=[
                ("Contact", f"<sip:focus@{PEER[0]}:{PEER[1]}>"),
                ("Expires", str(expires)),
            ],
        )
        self.receive(response)

    def test_subscribeThenNotify(self) -> None:
        """
        RFC 6665 4.1.2.1, R-181: SUBSCRIBE with Event, Expires, Accept and
        Contact; the 200 makes the dialog; the NOTIFY is answered 200 and
        delivered; the subscription is active.
        """
        subscription, recorder, sent = self.start()
        self.assertEqual(sent.method, "SUBSCRIBE")
        self.assertEqual(sent.header("Event"), "conference")
        self.assertEqual(sent.header("Expires"), "600")
        self.assertEqual(sent.header("Accept"), CONFERENCE_INFO_CONTENT_TYPE)
        self.assertIsNotNone(sent.contact)
        self.assertIs(subscription.status, SubscriptionStatus.NOTIFY_WAIT)
        self.ok(sent)
        self.assertIs(self.successResultOf(subscription.established), subscription)
        assert subscription.dialog is not None
        self.assertEqual(subscription.dialog.remoteTag, "peer")
        self.notify(sent, body=b"x")
        [response], _ = self.split()
        self.assertEqual(response.status, 200)
        self.assertEqual(len(recorder.notifies), 1)
        self.assertIs(subscription.status, SubscriptionStatus.ACTIVE)

    def test_notifyBefore200(self) -> None:
        """
        RFC 6665 4.1.2.4: the NOTIFY may come first; it makes the dialog,
        the later 200 joins it, and the refresh uses the next CSeq.
        """
        subscription, recorder, sent = self.start()
        self.notify(sent)
        [response], _ = self.split()
        self.assertEqual(response.status, 200)
        self.assertIs(self.successResultOf(subscription.established), subscription)
        dialog = subscription.dialog
        assert dialog is not None
        self.assertIsNone(subscription.refresh())
        self.ok(sent)
        self.assertIs(subscription.dialog, dialog)
        self.assertEqual(len(self.events.dialogs), 1)
        subscription.refresh()
        _, [(refresh, _)] = self.split()
        self.assertEqual(refresh.cseq.number, sent.cseq.number + 1)
        self.assertEqual(refresh.toAddress.tag, "peer")

    def test_unsubscribeBefore200(self) -> None:
        """
        RFC 6665 4.1.2.3: unsubscribing before the dialog exists waits
        for it, then sends Expires 0 once.
        """
        subscription, _, sent = self.start()
        ended = subscription.unsubscribe()
        self.assertEqual(self.split(), ([], []))
        self.notify(sent)
        self.ok(sent)
        _, [(unsubscribe, _)] = self.split()
        self.assertEqual(unsubscribe.header("Expires"), "0")
        self.notify(sent, "terminated;reason=timeout", cseq=2, branch="z9hG4bKn2")
        self.assertEqual(self.successResultOf(ended), SubscriptionReason.TIMEOUT)

    def test_refreshBeforeExpiry(self) -> None:
        """
        RFC 6665 4.1.2.2: a refresh goes out before the granted expiry,
        in the dialog.
        """
        subscription, _, sent = self.start()
        self.ok(sent, expires=600)
        self.notify(sent)
        self.split()
        self.clock.advance(539)
        self.assertEqual(self.split(), ([], []))
        self.clock.advance(1)
        _, [(refresh, _)] = self.split()
        self.assertEqual(refresh.method, "SUBSCRIBE")
        self.assertEqual(refresh.callID, sent.callID)
        self.assertEqual(refresh.cseq.number, sent.cseq.number + 1)
        self.ok(refresh, expires=300)
        self.clock.advance(239)
        self.assertEqual(self.split(), ([], []))
        self.clock.advance(1)
        self.assertEqual(len(self.split()[1]), 1)

    def test_unsubscribe(self) -> None:
        """
        RFC 6665 4.1.2.3: Expires 0; the terminated NOTIFY ends it (the
        handler is told once).
        """
        subscription, recorder, sent = self.start()
        self.ok(sent)
        self.notify(sent)
        self.split()
        ended = subscription.unsubscribe()
        _, [(unsubscribe, _)] = self.split()
        self.assertEqual(unsubscribe.header("Expires"), "0")
        self.assertNoResult(ended)
        self.notify(sent, "terminated;reason=timeout", cseq=2, branch="z9hG4bKn2")
        self.assertEqual(self.successResultOf(ended), SubscriptionReason.TIMEOUT)
        self.assertEqual(recorder.ended, [SubscriptionReason.TIMEOUT])
        self.assertIs(subscription.status, SubscriptionStatus.TERMINATED)
        self.assertEqual(self.events.dialogs, {})
        self.assertEqual(self.usageTimers(), [])

    def test_unknownNotify481(self) -> None:
        """
        RFC 6665 4.1.3: a NOTIFY for no subscription gets 481; one
        without Subscription-State 400.
        """
        _, _, sent = self.start()
        self.notify(sent, event="presence")
        self.notify(sent, state="", branch="z9hG4bKn2")
        responses, _ = self.split()
        self.assertEqual([r.status for r in responses], [481, 400])

    def test_deactivatedResubscribes(self) -> None:
        """
        RFC 6665 4.1.3: C{deactivated} re-subscribes at once (new
        dialog); C{rejected} ends it.
        """
        subscription, recorder, sent = self.start()
        self.ok(sent)
        self.notify(sent, "terminated;reason=deactivated")
        _, [(again, _)] = self.split()
        self.assertEqual(again.method, "SUBSCRIBE")
        self.assertNotEqual(again.fromAddress.tag, sent.fromAddress.tag)
        self.assertIs(subscription.status, SubscriptionStatus.NOTIFY_WAIT)
        self.notify(again, "terminated;reason=rejected", branch="z9hG4bKn2")
        self.assertEqual(recorder.ended, [SubscriptionReason.REJECTED])
        self.assertEqual(self.split()[1], [])

    def test_probationRetryAfter(self) -> None:
        """
        RFC 6665 4.1.3: C{probation} with retry-after waits that long.
        """
        subscription, _, sent = self.start()
        self.ok(sent)
        self.notify(sent, "terminated;reason=probation;retry-after=30")
        self.split()
        self.clock.advance(29)
        self.assertEqual(self.split()[1], [])
        self.clock.advance(1)
        self.assertEqual(len(self.split()[1]), 1)

    def test_failure(self) -> None:
        """
        A non-2xx final response fails C{established} with L{SIPError}.
        """
        subscription, recorder, sent = self.start()
        self.ok(sent, status=489)
        self.assertEqual(
            self.failureResultOf(subscription.established, SIPError).value.status, 489
        )
        self.assertEqual(recorder.ended, [SubscriptionReason.SUBSCRIBE_FAILED])

    def test_intervalTooBrief(self) -> None:
        """
        RFC 6665 4.1.2.1: 423 -> SUBSCRIBE again with the Min-Expires.
        """
        subscription, _, sent = self.start(expires=30)
        self.receive(
            sent.makeResponse(423, toTag="peer", extraHeaders=[("Min-Expires", "120")])
        )
        _, [(again, _)] = self.split()
        self.assertEqual(again.header("Expires"), "120")

    def test_timerN(self) -> None:
        """
        RFC 6665 4.1.2.4: no NOTIFY within 64*T1 ends the subscription.
        """
        subscription, recorder, sent = self.start()
        self.ok(sent)
        self.clock.advance(32)
        self.assertEqual(recorder.ended, [SubscriptionReason.NO_NOTIFY])

    def test_inDialog(self) -> None:
        """
        RFC 7702 5.3: subscribing inside an INVITE dialog uses its tags
        and CSeq space.
        """
        invites = InviteRecorder("accept")
        self.ua.addHandler("INVITE", invites)
        self.receive(request("INVITE", branch="z9hG4bKi1"))
        self.split()
        [dialog] = invites.dialogs
        subscription = self.events.subscribe(None, "conference", 600, dialog=dialog)
        _, [(sent, _)] = self.split()
        self.assertEqual(sent.fromAddress.tag, dialog.localTag)
        self.assertEqual(sent.toAddress.tag, "alicetag")
        self.assertEqual(sent.cseq.number, dialog.localSeq)
        self.receive(
            request(
                "NOTIFY",
                cseq=2,
                toTag=dialog.localTag,
                branch="z9hG4bKn1",
                extra="Event: conference\r\nSubscription-State: active\r\n",
            )
        )
        [response], _ = self.split()
        self.assertEqual(response.status, 200)
        self.assertIs(subscription.status, SubscriptionStatus.ACTIVE)
        self.assertRaises(ValueError, self.events.subscribe, None, "conference")

    def test_conferenceWatcher(self) -> None:
        """
        RFC 4575 4.6, R-180: full, then partial documents are merged; a
        version gap re-subscribes for a full one.
        """
        states: list[tuple[ConferenceInfo, MergeOutcome]] = []
        watcher = ConferenceWatcher(lambda s, o: states.append((s, o)))
        subscription, _, sent = self.start(handler=watcher)
        self.ok(sent)
        full = conference("Romeo").__class__(
            ROOM,
            version=1,
            description=ConferenceDescription(subject="s"),
            users=Users((User(f"{ROOM};gr=Romeo"),)),
        )
        self.notify(sent, body=full.toBytes())
        self.assertEqual(watcher.state, full)
        partial = ConferenceInfo(
            ROOM,
            version=2,
            state=ElementState.PARTIAL,
            users=Users((User(f"{ROOM};gr=Juliet"),), ElementState.PARTIAL),
        )
        self.notify(sent, body=partial.toBytes(), cseq=2, branch="z9hG4bKn2")
        assert watcher.state is not None
        self.assertEqual(len(watcher.state.userList), 2)
        self.split()
        gap = ConferenceInfo(
            ROOM,
            version=5,
            state=ElementState.PARTIAL,
            users=Users((), ElementState.PARTIAL),
        )
        self.notify(sent, body=gap.toBytes(), cseq=3, branch="z9hG4bKn3")
        _, [(refresh, _)] = self.split()
        self.assertEqual(refresh.method, "SUBSCRIBE")
        self.assertEqual(len(states), 2)

    def test_reasonTokens(self) -> None:
        """
        RFC 6665 4.1.3 tokens map to reasons; others are UNKNOWN.
        """
        self.assertIs(
            SubscriptionReason.fromToken("NoResource"), SubscriptionReason.NORESOURCE
        )
        self.assertIs(SubscriptionReason.fromToken("bogus"), SubscriptionReason.UNKNOWN)
        self.assertIs(SubscriptionReason.fromToken(None), SubscriptionReason.UNKNOWN)
        self.assertFalse(SubscriptionReason.SHUTDOWN.isProtocolReason)
        self.assertTrue(Event("refer").matches(Event("REFER")))
