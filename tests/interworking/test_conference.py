# -*- test-case-name: tests.interworking.test_conference -*-
"""
Tests for the conference event package of Gateway B
(L{stoxgw.interworking.siptoxmpp.RoomConferencePackage}, RFC 7702 section
6.2, R-213, R-217), as transcripts: the SIP user (gateway A of
L{tests.chat.test_session}'s L{Network}) SUBSCRIBEs to C{Event:
conference} at the room; the MUC's presences and subjects become full and
partial conference-info NOTIFYs.
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.chat.session import ChatSession
from stoxgw.formats.conferenceinfo import (
    CONFERENCE_INFO_CONTENT_TYPE,
    ConferenceInfo,
    DisconnectionMethod,
    ElementState,
    EndpointStatus,
)
from stoxgw.interworking.siptoxmpp import RoomConferencePackage
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.refer import ReferAgent
from stoxgw.sip.subscription import (
    ClientSubscription,
    ConferenceWatcher,
    ISubscriptionHandler,
    SIPEvents,
    SubscriptionReason,
    SubscriptionStatus,
)
from stoxgw.sip.uri import SIPURI, contactIsFocus, parseNameAddr
from tests.interworking.test_siptoxmpp import REAL, ROMEO_URI, ROOM, ROOM_URI, Bridge
from tests.xmpp.test_occupant import errorPresence, presence


@implementer(ISubscriptionHandler)
class Recorder:
    """
    A subscriber's handler keeping every NOTIFY's document and merging
    them with a L{ConferenceWatcher}.
    """

    def __init__(self) -> None:
        self.documents: list[ConferenceInfo] = []
        self.states: list[str] = []
        self.watcher = ConferenceWatcher()
        self.ended: list[SubscriptionReason] = []

    def notifyReceived(self, subscription: ClientSubscription, request: SIPRequest) -> None:
        self.states.append(request.header("Subscription-State") or "")
        if request.body:
            self.documents.append(ConferenceInfo.parse(request.body))
        self.watcher.notifyReceived(subscription, request)

    def subscriptionEnded(
        self, subscription: ClientSubscription, reason: SubscriptionReason
    ) -> None:
        self.ended.append(reason)


class Conference:
    """
    L{Bridge} with L{SIPEvents} on both sides: the gateway serving
    L{RoomConferencePackage}, the SIP user subscribing.
    """

    def __init__(self, test: SynchronousTestCase) -> None:
        self.test = test
        self.b = Bridge(test)
        self.notifier = SIPEvents(self.b.net.b.ua)
        self.notifier.addPackage(RoomConferencePackage(self.b.bridge))
        self.subscriber = SIPEvents(self.b.net.a.ua)
        self.recorder = Recorder()
        self.session: ChatSession | None = None

    def subscribe(
        self, target: str = ROOM_URI, inDialog: bool = False, sender: str = ROMEO_URI
    ) -> ClientSubscription:
        subscription = self.subscriber.subscribe(
            SIPURI.fromString(target),
            "conference",
            600,
            accept=(CONFERENCE_INFO_CONTENT_TYPE,),
            handler=self.recorder,
            fromAddress=parseNameAddr(f'"Romeo" <{sender}>'),
            dialog=self.session.dialog if inDialog else None,
        )
        subscription.established.addErrback(lambda _: None)
        self.b.net.pump()
        return subscription

    def enter(self, roster: tuple[str, ...] = ("JuliC",)) -> ChatSession:
        """
        The SIP user enters the room (L{Bridge.enter}); its session.
        """
        self.session = self.b.enter(roster=roster)
        return self.session

    def lastResponse(self, method: str) -> SIPResponse:
        responses = [
            message
            for _, message in self.b.net.sip
            if isinstance(message, SIPResponse)
            and (message.header("CSeq") or "").endswith(method)
        ]
        return responses[-1]

    def users(self, document: ConferenceInfo) -> list[tuple[str, ElementState]]:
        return [(user.entity, user.state) for user in document.userList]


JULIC = "sip:capulet@rooms.example;gr=JuliC"
ROMEO = "sip:capulet@rooms.example;gr=Romeo"


class FullStateTests(SynchronousTestCase):
    """
    SUBSCRIBE after entering: a full document of the roster (R-213, C.2.1
    step 8).
    """

    def test_fullState(self) -> None:
        """
        JuliC (member participant) and Romeo (the SIP user): two users with
        the occupant URIs, nick as display-text and xcon:nickname, roles,
        a connected message endpoint; version 1, state full.
        """
        c = Conference(self)
        c.enter()
        subscription = c.subscribe()
        self.assertEqual(subscription.status, SubscriptionStatus.ACTIVE)
        ok = c.lastResponse("SUBSCRIBE")
        self.assertEqual(ok.status, 200)
        # RFC 7702 section 5.3 example 8: the focus's Contact says isfocus.
        self.assertTrue(contactIsFocus(ok.header("Contact")))
        [document] = c.recorder.documents
        self.assertEqual(document.entity, ROOM_URI)
        self.assertEqual(document.version, 1)
        self.assertEqual(document.state, ElementState.FULL)
        self.assertEqual(
            c.users(document),
            [(JULIC, ElementState.FULL), (ROMEO, ElementState.FULL)],
        )
        julic, romeo = document.userList
        self.assertEqual((julic.displayText, julic.nickname), ("JuliC", "JuliC"))
        self.assertEqual(julic.roles, ("participant",))
        [endpoint] = julic.endpoints
        self.assertEqual(endpoint.entity, JULIC)
        self.assertEqual(endpoint.status, EndpointStatus.CONNECTED)
        self.assertEqual([m.type for m in endpoint.media], ["message"])
        self.assertEqual((romeo.displayText, romeo.nickname), ("Romeo", "Romeo"))
        self.assertEqual(romeo.roles, ("participant",))
        self.assertIn(b'xcon:nickname="JuliC"', document.toBytes())

    def test_moderatorAndRealJID(self) -> None:
        """
        A moderator's role and the real JID the room exposes
        (associated-aors).
        """
        c = Conference(self)
        c.enter(roster=())
        c.b.receive(
            presence(
                f"{ROOM.full()}/Nurse",
                REAL.full(),
                "<item affiliation='owner' role='moderator' jid='nurse@example.com/x'/>",
            )
        )
        c.subscribe()
        [document] = c.recorder.documents
        nurse = document.findUser("sip:capulet@rooms.example;gr=Nurse")
        assert nurse is not None
        self.assertEqual(nurse.roles, ("moderator",))
        assert nurse.associatedAORs is not None
        self.assertEqual(
            [e.uri for e in nurse.associatedAORs.entries], ["xmpp:nurse@example.com/x"]
        )

    def test_notAnOccupant(self) -> None:
        """
        A SUBSCRIBE from someone not in the room through the gateway, or
        for another room -> 403 (SPEC E.4 "not an occupant"); for a domain
        that is not a MUC domain of ours -> 403 and without a room name ->
        484, as an INVITE there.
        """
        c = Conference(self)
        c.enter()
        subscription = c.subscribe(sender="sip:tybalt@example.org")
        self.assertEqual(c.lastResponse("SUBSCRIBE").status, 403)
        self.assertEqual(subscription.status, SubscriptionStatus.TERMINATED)
        c.subscribe(target="sip:montague@rooms.example")
        self.assertEqual(c.lastResponse("SUBSCRIBE").status, 403)
        c.subscribe(target="sip:capulet@elsewhere.example")
        self.assertEqual(c.lastResponse("SUBSCRIBE").status, 403)
        c.subscribe(target="sip:rooms.example")
        self.assertEqual(c.lastResponse("SUBSCRIBE").status, 484)
        self.assertEqual(c.recorder.documents, [])

    def test_beforeEntering(self) -> None:
        """
        No chat yet -> 403.
        """
        c = Conference(self)
        c.subscribe()
        self.assertEqual(c.lastResponse("SUBSCRIBE").status, 403)


class PartialTests(SynchronousTestCase):
    """
    Roster and subject changes -> partial NOTIFYs, version +1 (R-213,
    R-217).
    """

    def setUp(self) -> None:
        self.c = Conference(self)
        self.c.enter()
        self.c.subscribe()

    def last(self) -> ConferenceInfo:
        return self.c.recorder.documents[-1]

    def test_join(self) -> None:
        """
        Nurse enters -> partial users with Nurse added, version 2.
        """
        self.c.b.receive(
            presence(
                f"{ROOM.full()}/Nurse",
                REAL.full(),
                "<item affiliation='none' role='visitor'/>",
            )
        )
        document = self.last()
        self.assertEqual((document.version, document.state), (2, ElementState.PARTIAL))
        nurse = "sip:capulet@rooms.example;gr=Nurse"
        self.assertEqual(self.c.users(document), [(nurse, ElementState.FULL)])
        [user] = document.userList
        self.assertEqual(user.roles, ("visitor",))
        self.assertIn(b"<display-text>Nurse</display-text>", document.toBytes())
        state = self.c.recorder.watcher.state
        assert state is not None
        self.assertEqual(
            [u.entity for u in state.userList], [JULIC, ROMEO, nurse]
        )

    def test_leave(self) -> None:
        """
        JuliC leaves -> partial with JuliC deleted.
        """
        self.c.b.receive(
            presence(
                f"{ROOM.full()}/JuliC",
                REAL.full(),
                "<item affiliation='member' role='none'/>",
                "unavailable",
            )
        )
        document = self.last()
        self.assertEqual(document.version, 2)
        self.assertEqual(self.c.users(document), [(JULIC, ElementState.DELETED)])

    def test_kicked(self) -> None:
        """
        SPEC E.5, RFC 4575 section 5.7.3: JuliC is kicked (307) -> a
        partial NOTIFY showing her endpoint disconnected, booted, then one
        deleting her; a technical removal (333) is "failed".
        """
        self.c.b.receive(
            presence(
                f"{ROOM.full()}/JuliC",
                REAL.full(),
                "<item affiliation='member' role='none'/><status code='307'/>",
                "unavailable",
            )
        )
        booted, deleted = self.c.recorder.documents[-2:]
        [user] = booted.userList
        self.assertEqual(user.entity, JULIC)
        [endpoint] = user.endpoints
        self.assertEqual(endpoint.status, EndpointStatus.DISCONNECTED)
        self.assertEqual(endpoint.disconnectionMethod, DisconnectionMethod.BOOTED)
        self.assertEqual(self.c.users(deleted), [(JULIC, ElementState.DELETED)])
        self.assertEqual((booted.version, deleted.version), (2, 3))

    def test_otherNickChange(self) -> None:
        """
        JuliC becomes Juliet (303) -> one partial: JuliC deleted, Juliet
        added.
        """
        self.c.b.receive(
            presence(
                f"{ROOM.full()}/JuliC",
                REAL.full(),
                "<item affiliation='member' nick='Juliet' role='participant'/>"
                "<status code='303'/>",
                "unavailable",
            )
        )
        document = self.last()
        juliet = "sip:capulet@rooms.example;gr=Juliet"
        self.assertEqual(document.version, 2)
        self.assertEqual(
            self.c.users(document),
            [(JULIC, ElementState.DELETED), (juliet, ElementState.FULL)],
        )
        self.assertEqual(document.userList[1].nickname, "Juliet")
        # The new presence of Juliet changes nothing more.
        self.c.b.receive(
            presence(
                f"{ROOM.full()}/Juliet",
                REAL.full(),
                "<item affiliation='member' role='participant'/>",
            )
        )
        self.assertEqual(self.last().version, 2)

    def test_ownNickChange(self) -> None:
        """
        The SIP user's NICKNAME -> Romeo deleted, montecchi added.
        """
        session = self.c.session
        assert session is not None
        d = session.sendNickname("montecchi")
        self.c.b.net.pump()
        self.c.b.sent()
        self.c.b.receive(
            presence(
                f"{ROOM.full()}/Romeo",
                REAL.full(),
                "<item affiliation='none' nick='montecchi' role='participant'/>"
                "<status code='303'/><status code='110'/>",
                "unavailable",
            )
        )
        self.c.b.receive(
            presence(
                f"{ROOM.full()}/montecchi",
                REAL.full(),
                "<item affiliation='none' role='participant'/><status code='110'/>",
            )
        )
        self.assertEqual(self.successResultOf(d), 200)
        document = self.last()
        self.assertEqual(document.version, 2)
        self.assertEqual(
            self.c.users(document),
            [
                (ROMEO, ElementState.DELETED),
                ("sip:capulet@rooms.example;gr=montecchi", ElementState.FULL),
            ],
        )

    def test_subject(self) -> None:
        """
        A subject -> partial with conference-description/subject; no users.
        """
        self.c.b.receive(
            f"<message from='{ROOM.full()}/JuliC' to='{REAL.full()}' type='groupchat'>"
            "<subject>Today in Verona</subject></message>"
        )
        document = self.last()
        self.assertEqual(document.version, 2)
        assert document.description is not None
        self.assertEqual(document.description.subject, "Today in Verona")
        self.assertIsNone(document.users)
        self.assertIn(b"<subject>Today in Verona</subject>", document.toBytes())

    def test_byeTerminates(self) -> None:
        """
        The chat ends -> NOTIFY terminated;reason=noresource.
        """
        session = self.c.session
        assert session is not None
        session.end()
        self.c.b.net.pump()
        self.assertTrue(self.c.recorder.states[-1].startswith("terminated"))
        self.assertIn("noresource", self.c.recorder.states[-1])
        self.assertEqual(self.c.recorder.ended, [SubscriptionReason.NORESOURCE])


class InDialogTests(SynchronousTestCase):
    """
    SUBSCRIBE inside the INVITE dialog (RFC 7702 examples, RFC 5057).
    """

    def test_inDialog(self) -> None:
        """
        Same full state; a join gives a partial; BYE terminates it.
        """
        c = Conference(self)
        session = c.enter()
        subscription = c.subscribe(inDialog=True)
        self.assertEqual(subscription.status, SubscriptionStatus.ACTIVE)
        [document] = c.recorder.documents
        self.assertEqual(
            c.users(document), [(JULIC, ElementState.FULL), (ROMEO, ElementState.FULL)]
        )
        subscribe = [
            m for _, m in c.b.net.sip if isinstance(m, SIPRequest) and m.method == "SUBSCRIBE"
        ][-1]
        self.assertEqual(subscribe.header("Call-ID"), session.callID)
        c.b.receive(
            presence(
                f"{ROOM.full()}/Nurse", REAL.full(), "<item affiliation='none' role='participant'/>"
            )
        )
        self.assertEqual(c.recorder.documents[-1].version, 2)
        session.end()
        c.b.net.pump()
        self.assertEqual(c.recorder.ended, [SubscriptionReason.NORESOURCE])


class RaceTests(SynchronousTestCase):
    """
    A SUBSCRIBE that overtakes the INVITE's join waits for it.
    """

    def test_waitsForJoin(self) -> None:
        """
        SUBSCRIBE while the MUC join is under way: no answer yet; once the
        110 self-presence came, 200 and the full state.
        """
        c = Conference(self)
        c.b.invite()
        c.b.sent()
        subscription = c.subscribe()
        self.assertEqual(
            [m for _, m in c.b.net.sip if isinstance(m, SIPResponse) and (m.header("CSeq") or "").endswith("SUBSCRIBE")],
            [],
        )
        c.b.receive(
            presence(
                f"{ROOM.full()}/Romeo",
                REAL.full(),
                "<item affiliation='none' role='participant'/><status code='110'/>",
            )
        )
        self.assertEqual(c.lastResponse("SUBSCRIBE").status, 200)
        self.assertEqual(subscription.status, SubscriptionStatus.ACTIVE)
        [document] = c.recorder.documents
        self.assertEqual(c.users(document), [(ROMEO, ElementState.FULL)])

    def test_joinFails(self) -> None:
        """
        The join it waited for fails: 403.
        """
        c = Conference(self)
        d = c.b.invite()
        c.b.sent()
        c.subscribe()
        c.b.receive(
            errorPresence(REAL.full(), "403", "auth", "forbidden", sender=f"{ROOM.full()}/Romeo")
        )
        self.assertEqual(c.lastResponse("SUBSCRIBE").status, 403)
        self.failureResultOf(d)

    def test_waitIsBounded(self) -> None:
        """
        A join that takes longer than the wait: 403 after it, not a hang.
        """
        c = Conference(self)
        c.b.invite()
        c.b.sent()
        c.subscribe()
        c.b.xmppClock.advance(5)
        c.b.net.pump()
        self.assertEqual(c.lastResponse("SUBSCRIBE").status, 403)


class ReferTests(SynchronousTestCase):
    """
    RFC 7702 section 6.5 (F55-F58): REFER to the room -> 200, a C{100
    Trying} NOTIFY ending the implicit subscription, and a mediated
    invitation from the room.
    """

    def setUp(self) -> None:
        self.c = Conference(self)
        self.gatewayRefer = ReferAgent(self.c.notifier, self.c.b.bridge, acceptStatus=200)
        self.userRefer = ReferAgent(self.c.subscriber)
        self.session = self.c.enter()

    def refer(self, referTo: str, inDialog: bool = True) -> Any:
        if inDialog:
            d = self.userRefer.refer(self.session.dialog, parseNameAddr(referTo))
        else:
            d = self.userRefer.refer(
                SIPURI.fromString(ROOM_URI),
                parseNameAddr(referTo),
                fromAddress=parseNameAddr(f'"Romeo" <{ROMEO_URI}>'),
            )
        d.addErrback(lambda reason: reason.value)
        self.c.b.net.pump()
        return d

    def test_inDialog(self) -> None:
        """
        REFER in the INVITE dialog with Refer-To <sip:benvolio@example.com>:
        200; NOTIFY Event refer, sipfrag C{SIP/2.0 100 Trying},
        Subscription-State terminated; XMPP gets a mediated invitation to
        benvolio@example.com from the SIP user's real JID, to the room.
        """
        d = self.refer("<sip:benvolio@example.com>")
        outgoing = self.successResultOf(d)
        self.assertEqual(outgoing.response.status, 200)
        [notify] = self.c.b.net.requests("NOTIFY", sender="192.0.2.2")
        self.assertEqual(notify.header("Event").split(";")[0], "refer")
        self.assertTrue((notify.header("Subscription-State") or "").startswith("terminated"))
        self.assertEqual(notify.body, b"SIP/2.0 100 Trying\r\n")
        [invite] = self.c.b.sent()
        self.assertEqual(
            (invite.name, invite["to"], invite["from"]), ("message", ROOM.full(), REAL.full())
        )
        [x] = [c for c in invite.elements() if c.name == "x"]
        self.assertEqual(x.uri, "http://jabber.org/protocol/muc#user")
        [inv] = [c for c in x.elements() if c.name == "invite"]
        self.assertEqual(inv["to"], "benvolio@example.com")

    def test_outOfDialog(self) -> None:
        """
        A REFER to the room URI outside the dialog, from the user: the same
        invitation (RFC 4579 section 5.5); the 200 comes from the focus
        (C{isfocus}, RFC 7702 section 5.3 example 8).
        """
        d = self.refer("<sip:benvolio@example.com>", inDialog=False)
        response = self.successResultOf(d).response
        self.assertEqual(response.status, 200)
        self.assertTrue(contactIsFocus(response.header("Contact")))
        [invite] = self.c.b.sent()
        [x] = [c for c in invite.elements() if c.name == "x"]
        [inv] = [c for c in x.elements() if c.name == "invite"]
        self.assertEqual(inv["to"], "benvolio@example.com")

    def test_xmppURI(self) -> None:
        """
        Refer-To an C{xmpp:} URI (RFC 5122): that JID.
        """
        self.successResultOf(self.refer("<xmpp:nurse@capulet.example>"))
        [invite] = self.c.b.sent()
        [x] = [c for c in invite.elements() if c.name == "x"]
        [inv] = [c for c in x.elements() if c.name == "invite"]
        self.assertEqual(inv["to"], "nurse@capulet.example")

    def test_refused(self) -> None:
        """
        Removal (C{method=BYE}) is out of scope: 403; a scheme with no JID
        (tel:) gets 416; someone not in the room: 403.  Nothing reaches
        XMPP.
        """
        error = self.successResultOf(self.refer("<sip:tybalt@example.com;method=BYE>"))
        self.assertEqual(error.status, 403)
        error = self.successResultOf(self.refer("<tel:+15551234>"))
        self.assertEqual(error.status, 416)
        d = self.userRefer.refer(
            SIPURI.fromString(ROOM_URI),
            parseNameAddr("<sip:benvolio@example.com>"),
            fromAddress=parseNameAddr("<sip:tybalt@example.org>"),
        )
        d.addErrback(lambda reason: reason.value)
        self.c.b.net.pump()
        self.assertEqual(self.successResultOf(d).status, 403)
        self.assertEqual(self.c.b.sent(), [])
