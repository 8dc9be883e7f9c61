# -*- test-case-name: tests.xmpp.test_occupant -*-
"""
Tests for L{stoxgw.xmpp.occupant}: the gateway's MUC occupants (RFC 7702
section 6), driven over a real L{ComponentLink} on a memory reactor and a
string transport.

Room stanzas are XEP-0045's own examples (checked against the text of
xsf/xeps C{xep-0045.xml}; section numbers of v1.35), addressed as the
examples address them: the gateway's user domain is C{shakespeare.lit}, so
C{hag66@shakespeare.lit/pda} and its fellows are SIP users behind it.  Status
333 is newer than the stored text; its stanza has the shape Prosody sends
(307 + 333 with 110).
"""

from __future__ import annotations

import datetime
from typing import Any

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber import error
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from wokkel import generic, muc
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.rooms.model import Subject
from stoxgw.xmpp.component import ComponentLink
from stoxgw.xmpp.occupant import (
    Decline,
    GroupchatMessage,
    IOccupantHandler,
    Invitation,
    JoinResult,
    LeftReason,
    LinkLost,
    NotInRoom,
    Occupant,
    OccupantError,
    OccupantService,
    OccupantState,
    OccupantTimeout,
    PrivateMessage,
    Removal,
    RemovedWhileJoining,
    SelfPingResult,
    leftReason,
)
from stoxgw.xmpp.stanzas import NS_CHATSTATES, NS_MUC, NS_MUC_USER, ChatStateNotification

DOMAIN = "shakespeare.lit"
ROOM = JID("darkcave@macbeth.shakespeare.lit")
HAG = JID("hag66@shakespeare.lit/pda")
WICCA = JID("wiccarocks@shakespeare.lit/laptop")
CRONE = JID("crone1@shakespeare.lit/desktop")
MUC_USER = "http://jabber.org/protocol/muc#user"
SERVER_HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
    b"xmlns:stream='http://etherx.jabber.org/streams' from='shakespeare.lit' id='s1'>"
)
UTC = datetime.timezone.utc


@implementer(IOccupantHandler)
class RecordingHandler:
    """
    Records every call of the occupant service, as (method, arguments).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for method, args in self.calls if method == name]

    def occupantAvailable(self, roomJID: JID, realJID: JID, occupant: Occupant, new: bool) -> None:
        self.calls.append(("occupantAvailable", (roomJID, realJID, occupant, new)))

    def occupantLeft(self, roomJID: JID, realJID: JID, occupant: Occupant, removal: Removal) -> None:
        self.calls.append(("occupantLeft", (roomJID, realJID, occupant, removal)))

    def occupantNickChanged(self, roomJID: JID, realJID: JID, oldNick: str, occupant: Occupant) -> None:
        self.calls.append(("occupantNickChanged", (roomJID, realJID, oldNick, occupant)))

    def nickChanged(self, roomJID: JID, realJID: JID, oldNick: str, newNick: str) -> None:
        self.calls.append(("nickChanged", (roomJID, realJID, oldNick, newNick)))

    def left(self, roomJID: JID, realJID: JID, removal: Removal) -> None:
        self.calls.append(("left", (roomJID, realJID, removal)))

    def subjectReceived(self, roomJID: JID, realJID: JID, subject: Subject) -> None:
        self.calls.append(("subjectReceived", (roomJID, realJID, subject)))

    def groupchatReceived(self, roomJID: JID, realJID: JID, message: GroupchatMessage) -> None:
        self.calls.append(("groupchatReceived", (roomJID, realJID, message)))

    def privateMessageReceived(self, roomJID: JID, realJID: JID, message: PrivateMessage) -> None:
        self.calls.append(("privateMessageReceived", (roomJID, realJID, message)))

    def chatStateReceived(
        self, roomJID: JID, realJID: JID, nick: str, state: ChatStateNotification, private: bool
    ) -> None:
        self.calls.append(("chatStateReceived", (roomJID, realJID, nick, state, private)))

    def messageFailed(
        self, roomJID: JID, realJID: JID, stanzaID: str | None, reason: error.StanzaError
    ) -> None:
        self.calls.append(("messageFailed", (roomJID, realJID, stanzaID, reason)))

    def invitationReceived(self, realJID: JID, invitation: Invitation) -> None:
        self.calls.append(("invitationReceived", (realJID, invitation)))

    def declineReceived(self, realJID: JID, decline: Decline) -> None:
        self.calls.append(("declineReceived", (realJID, decline)))

    def linkLost(self, domain: str, occupants: Any) -> None:
        self.calls.append(("linkLost", (domain, list(occupants))))

    def linkRestored(self, domain: str, occupants: Any) -> None:
        self.calls.append(("linkRestored", (domain, list(occupants))))


def presence(sender: str, to: str, items: str = "", presenceType: str | None = None, extra: str = "") -> str:
    """
    A presence from the room with a muc#user C{<x/>} holding C{items}.
    """
    typeAttribute = f" type='{presenceType}'" if presenceType else ""
    return (
        f"<presence from='{sender}' to='{to}'{typeAttribute}>{extra}"
        f"<x xmlns='{MUC_USER}'>{items}</x></presence>"
    )


def errorPresence(to: str, code: str, errorType: str, condition: str, sender: str = ROOM.full()) -> str:
    """
    An entry error as in XEP-0045 7.2.6-7.2.11.
    """
    return (
        f"<presence from='{sender}' to='{to}' type='error'>"
        f"<error code='{code}' type='{errorType}'>"
        f"<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
    )


def child(element: domish.Element, name: str) -> domish.Element:
    """
    @return: the first child element called C{name}, whatever its namespace.
    """
    for candidate in element.elements():
        if candidate.name == name:
            return candidate
    raise AssertionError(f"no <{name}/> in {element.toXml()}")


class OccupantTestCase(SynchronousTestCase):
    """
    An L{OccupantService} on a component link for C{shakespeare.lit}, the
    link up.
    """

    instantRooms = True

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.link = ComponentLink(
            self.reactor, DOMAIN, "127.0.0.1", 5347, "secret",
            queueSize=10, maxDelay=60.0, jitter=lambda: 0.0,
        )
        self.handler = RecordingHandler()
        self.ids = iter(f"id{n}" for n in range(1, 1000))
        self.service = OccupantService(
            self.handler, self.reactor, DOMAIN, instantRooms=self.instantRooms,
            timeout=30.0, reflectionTimeout=10.0, idFactory=lambda: next(self.ids),
        )
        self.service.attach(self.link)
        self.link.startService()
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.connect()

    def connect(self) -> None:
        """
        Complete the pending connection attempt and the handshake.
        """
        _, _, factory, *_ = self.reactor.tcpClients[-1]
        self.protocol = factory.buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(SERVER_HEADER)
        self.protocol.dataReceived(b"<handshake/>")
        self.assertTrue(self.link.up)
        self.transport.clear()

    def receive(self, xml: str) -> None:
        """
        The server sends C{xml}.
        """
        self.protocol.dataReceived(xml.encode("utf-8"))

    def sent(self) -> list[domish.Element]:
        """
        @return: the stanzas sent since the last call.
        """
        data = self.transport.value()
        self.transport.clear()
        root = generic.parseXml(b"<r xmlns='jabber:component:accept'>" + data + b"</r>")
        return [child for child in root.elements()]

    def join(
        self, realJID: JID = HAG, nick: str = "thirdwitch", roster: tuple[str, ...] = (), **kwargs: Any
    ) -> JoinResult:
        """
        Join L{ROOM} and complete the join with the 110 self-presence.
        """
        d = self.service.join(ROOM, nick, realJID, **kwargs)
        self.sent()
        for xml in roster:
            self.receive(xml)
        self.receive(
            presence(f"{ROOM.full()}/{nick}", realJID.full(),
                     "<item affiliation='member' role='participant'/><status code='110'/>")
        )
        result: JoinResult = self.successResultOf(d)
        return result


class InterfaceTests(SynchronousTestCase):
    """
    The recording handler is a real L{IOccupantHandler}.
    """

    def test_interface(self) -> None:
        """
        L{RecordingHandler} provides L{IOccupantHandler}.
        """
        verifyObject(IOccupantHandler, RecordingHandler())


class JoinTests(OccupantTestCase):
    """
    Entering a room (XEP-0045 7.2; R-184, R-185, R-194, R-195).
    """

    def test_joinStanza(self) -> None:
        """
        R-194, R-195, XEP-0045 7.2.2 / 7.2.14: the join presence has no type,
        comes from the real JID, goes to room/nick and holds the muc C{<x/>}
        with C{<history maxstanzas='20'/>} and the password (7.2.6).
        """
        self.service.join(ROOM, "thirdwitch", HAG, password="cauldronburn")
        [stanza] = self.sent()
        self.assertEqual(stanza.name, "presence")
        self.assertIsNone(stanza.getAttribute("type"))
        self.assertEqual(stanza["from"], "hag66@shakespeare.lit/pda")
        self.assertEqual(stanza["to"], "darkcave@macbeth.shakespeare.lit/thirdwitch")
        [x] = list(stanza.elements(NS_MUC, "x"))
        self.assertEqual(str(next(x.elements(NS_MUC, "password"))), "cauldronburn")
        [history] = list(x.elements(NS_MUC, "history"))
        self.assertEqual(history["maxstanzas"], "20")

    def test_historyOption(self) -> None:
        """
        XEP-0045 7.2.15: C{maxchars='0'} asks for no history.
        """
        self.service.join(ROOM, "thirdwitch", HAG, history=muc.HistoryOptions(maxChars=0))
        [stanza] = self.sent()
        history = next(next(stanza.elements(NS_MUC, "x")).elements(NS_MUC, "history"))
        self.assertEqual(history["maxchars"], "0")

    def test_completesOn110AfterRoster(self) -> None:
        """
        R-184, XEP-0045 7.2.3: the existing occupants' presence comes first
        (handler told as they come), the join completes only with the
        self-presence carrying status 110, and its result holds the roster.
        """
        d = self.service.join(ROOM, "thirdwitch", HAG)
        self.sent()
        self.receive(presence(f"{ROOM.full()}/firstwitch", HAG.full(),
                              "<item affiliation='owner' role='moderator'/>"))
        self.receive(presence(f"{ROOM.full()}/secondwitch", HAG.full(),
                              "<item affiliation='admin' role='moderator'/>"))
        self.assertNoResult(d)
        self.assertEqual(
            [(args[2].nick, args[2].affiliation, args[2].role, args[3])
             for args in self.handler.named("occupantAvailable")],
            [("firstwitch", "owner", "moderator", True), ("secondwitch", "admin", "moderator", True)],
        )
        self.receive(presence(f"{ROOM.full()}/thirdwitch", HAG.full(),
                              "<item affiliation='member' role='participant'/><status code='110'/>"))
        result = self.successResultOf(d)
        self.assertEqual(result.nick, "thirdwitch")
        self.assertEqual([o.nick for o in result.occupants], ["firstwitch", "secondwitch"])
        self.assertTrue(result.self.isSelf)
        self.assertEqual((result.self.affiliation, result.self.role), ("member", "participant"))
        self.assertFalse(result.created)
        self.assertEqual(self.service.stateOf(ROOM, HAG), OccupantState.JOINED)

    def test_serviceAssignedNick(self) -> None:
        """
        XEP-0045 7.2.3: with status 210 the room gave another nick; the
        result and later operations use it.
        """
        d = self.service.join(ROOM, "ThirdWitch", HAG)
        self.receive(presence(f"{ROOM.full()}/thirdwitch", HAG.full(),
                              "<item affiliation='member' role='participant'/>"
                              "<status code='110'/><status code='210'/>"))
        result = self.successResultOf(d)
        self.assertEqual(result.nick, "thirdwitch")
        self.assertEqual(result.statusCodes, frozenset({110, 210}))
        self.assertEqual(self.service.nickOf(ROOM, HAG), "thirdwitch")

    def test_nonAnonymous(self) -> None:
        """
        XEP-0045 7.2.4: in a non-anonymous room the items carry real JIDs
        and the self-presence status 100.
        """
        result = self.join(roster=(
            presence(f"{ROOM.full()}/firstwitch", HAG.full(),
                     "<item affiliation='owner' jid='crone1@shakespeare.lit/desktop' role='moderator'/>"),
        ))
        self.assertEqual(result.occupants[0].jid, CRONE)

    def test_roomCreatedInstant(self) -> None:
        """
        XEP-0045 10.1.1-10.1.2: status 201 means the room was created and is
        locked; the service submits the instant-room form (an empty x:data
        submit in a muc#owner query, to the room) and completes the join
        only when the room accepted it, so that others can enter.
        """
        d = self.service.join(ROOM, "firstwitch", CRONE)
        self.sent()
        self.receive(presence(f"{ROOM.full()}/firstwitch", CRONE.full(),
                              "<item affiliation='owner' role='moderator'/>"
                              "<status code='110'/><status code='201'/>"))
        self.assertNoResult(d)
        [iq] = self.sent()
        self.assertEqual((iq.name, iq["type"], iq["to"], iq["from"]),
                         ("iq", "set", ROOM.full(), CRONE.full()))
        [query] = list(iq.elements())
        self.assertEqual((query.uri, query.name), ("http://jabber.org/protocol/muc#owner", "query"))
        [form] = list(query.elements())
        self.assertEqual((form.uri, form.name, form["type"]), ("jabber:x:data", "x", "submit"))
        self.assertEqual(list(form.elements()), [])
        self.assertEqual(self.service.stateOf(ROOM, CRONE), OccupantState.CONFIGURING)
        self.receive(f"<iq from='{ROOM.full()}' to='{CRONE.full()}' id='{iq['id']}' type='result'/>")
        result = self.successResultOf(d)
        self.assertTrue(result.created)
        self.assertFalse(result.locked)
        self.assertEqual(self.service.stateOf(ROOM, CRONE), OccupantState.JOINED)

    def test_instantRoomRefused(self) -> None:
        """
        If the room refuses the instant-room form, the join fails with an
        L{OccupantError} carrying the room's error, and the service leaves
        the locked room.
        """
        d = self.service.join(ROOM, "firstwitch", CRONE)
        self.receive(presence(f"{ROOM.full()}/firstwitch", CRONE.full(),
                              "<status code='110'/><status code='201'/>"))
        [_, iq] = self.sent()
        self.receive(
            f"<iq from='{ROOM.full()}' to='{CRONE.full()}' id='{iq['id']}' type='error'>"
            "<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            "</error></iq>"
        )
        failure = self.failureResultOf(d, OccupantError)
        self.assertEqual(failure.value.stanzaError.condition, "not-acceptable")
        [leave] = self.sent()
        self.assertEqual((leave["type"], leave["to"]), ("unavailable", f"{ROOM.full()}/firstwitch"))

    def test_entryErrors(self) -> None:
        """
        XEP-0045 7.2.6-7.2.11 and 10.1.1: each entry error is an
        L{OccupantError} carrying its condition; the occupant is forgotten.
        """
        cases = [
            ("401", "auth", "not-authorized"),
            ("407", "auth", "registration-required"),
            ("403", "auth", "forbidden"),
            ("409", "cancel", "conflict"),
            ("503", "wait", "service-unavailable"),
            ("404", "cancel", "item-not-found"),
            ("405", "cancel", "not-allowed"),
            ("406", "cancel", "not-acceptable"),
        ]
        for code, errorType, condition in cases:
            d = self.service.join(ROOM, "thirdwitch", HAG)
            self.receive(errorPresence(HAG.full(), code, errorType, condition))
            failure = self.failureResultOf(d, OccupantError)
            self.assertIs(type(failure.value), OccupantError)
            self.assertEqual(failure.value.condition, condition)
            self.assertEqual(failure.value.stanzaError.condition, condition)
            self.assertIsNone(self.service.stateOf(ROOM, HAG))

    def test_entryErrorFromOccupantJID(self) -> None:
        """
        Some services send the error from the room/nick JID (XEP-0045 10.1.1
        example); it is recognised too.
        """
        d = self.service.join(ROOM, "thirdwitch", HAG)
        self.receive(errorPresence(HAG.full(), "409", "cancel", "conflict", sender=f"{ROOM.full()}/thirdwitch"))
        self.assertEqual(self.failureResultOf(d, OccupantError).value.condition, "conflict")

    def test_otherEntryError(self) -> None:
        """
        Conditions XEP-0045 does not list for entry give an
        L{OccupantError} with that condition too; the refusal is logged with
        the room, nick and error fields.
        """
        d = self.service.join(ROOM, "thirdwitch", HAG)
        self.receive(errorPresence(HAG.full(), "500", "wait", "resource-constraint"))
        failure = self.failureResultOf(d, OccupantError)
        self.assertIs(type(failure.value), OccupantError)
        self.assertEqual(failure.value.condition, "resource-constraint")
        [event] = [e for e in self.events if e.get("log_format", "").startswith("Join of")]
        self.assertEqual((event["roomJID"], event["nick"], event["error"]),
                         (ROOM.full(), "thirdwitch", "resource-constraint"))

    def test_joinTimeout(self) -> None:
        """
        A room that does not answer: the join fails with L{OccupantTimeout}
        after C{timeout} seconds and an unavailable presence is sent in case
        the room let us in late.
        """
        d = self.service.join(ROOM, "thirdwitch", HAG)
        self.sent()
        self.reactor.advance(29)
        self.assertNoResult(d)
        self.reactor.advance(1)
        self.failureResultOf(d, OccupantTimeout)
        [stanza] = self.sent()
        self.assertEqual(stanza["type"], "unavailable")
        self.assertIsNone(self.service.stateOf(ROOM, HAG))

    def test_removedWhileJoining(self) -> None:
        """
        XEP-0045 7.2 (v1.32): a service that kicks a join (110 + 307 + 333)
        fails it with L{RemovedWhileJoining}.
        """
        d = self.service.join(ROOM, "thirdwitch", HAG)
        self.receive(presence(f"{ROOM.full()}/thirdwitch", HAG.full(),
                              "<item affiliation='none' role='none'/><status code='110'/>"
                              "<status code='307'/><status code='333'/>", "unavailable"))
        failure = self.failureResultOf(d, RemovedWhileJoining)
        self.assertEqual(failure.value.removal.reason, LeftReason.TECHNICAL)

    def test_badRealJID(self) -> None:
        """
        Real JIDs are full JIDs on the service's domain.
        """
        self.failureResultOf(self.service.join(ROOM, "x", JID("hag66@shakespeare.lit")), ValueError)
        self.failureResultOf(self.service.join(ROOM, "x", JID("hag66@elsewhere.lit/pda")), ValueError)
        self.assertEqual(self.sent(), [])


class NoInstantRoomTests(OccupantTestCase):
    """
    With C{instantRooms} off the created room is left locked.
    """

    instantRooms = False

    def test_roomCreatedLocked(self) -> None:
        """
        XEP-0045 10.1.1: the join completes on 201, marked created and
        locked, and no form is sent.
        """
        d = self.service.join(ROOM, "firstwitch", CRONE)
        self.sent()
        self.receive(presence(f"{ROOM.full()}/firstwitch", CRONE.full(),
                              "<item affiliation='owner' role='moderator'/><status code='201'/>"))
        result = self.successResultOf(d)
        self.assertTrue(result.created)
        self.assertTrue(result.locked)
        self.assertEqual(self.sent(), [])


class TwoOccupantTests(OccupantTestCase):
    """
    Two SIP users in one room over one stream: state is per (room, real JID).
    """

    def test_separateState(self) -> None:
        """
        docs/design.md: occupants are keyed by (room, real JID).  Presences and
        messages are routed by the real JID they are addressed to; one
        user's own message is a reflection for it and a plain message for
        the other.
        """
        self.join(HAG, "thirdwitch")
        self.join(WICCA, "secondwitch", roster=(
            presence(f"{ROOM.full()}/thirdwitch", WICCA.full(), "<item affiliation='member' role='participant'/>"),
        ))
        self.assertEqual(self.service.nickOf(ROOM, HAG), "thirdwitch")
        self.assertEqual(self.service.nickOf(ROOM, WICCA), "secondwitch")
        self.assertEqual(list(self.service.rosterOf(ROOM, WICCA)), ["thirdwitch"])
        self.assertEqual(list(self.service.rosterOf(ROOM, HAG)), [])
        d = self.service.sendGroupchat(ROOM, HAG, "Harpier cries: 'tis time, 'tis time.", "m1")
        for to in (HAG, WICCA):
            self.receive(
                f"<message from='{ROOM.full()}/thirdwitch' to='{to.full()}' type='groupchat' id='m1'>"
                "<body>Harpier cries: 'tis time, 'tis time.</body></message>"
            )
        self.successResultOf(d)
        [(_, hagReal, hagMessage), (_, wiccaReal, wiccaMessage)] = self.handler.named("groupchatReceived")
        self.assertEqual((hagReal, hagMessage.reflectionOf, hagMessage.fromSelf), (HAG, "m1", True))
        self.assertEqual((wiccaReal, wiccaMessage.reflectionOf, wiccaMessage.fromSelf), (WICCA, None, False))
        self.assertEqual(wiccaMessage.nick, "thirdwitch")

    def bothJoined(self) -> None:
        """
        thirdwitch (hag66) and secondwitch (wiccarocks) in L{ROOM}.
        """
        self.join(HAG, "thirdwitch")
        self.join(WICCA, "secondwitch", roster=(
            presence(f"{ROOM.full()}/thirdwitch", WICCA.full(), "<item affiliation='member' role='participant'/>"),
        ))
        self.receive(presence(f"{ROOM.full()}/secondwitch", HAG.full(),
                              "<item affiliation='member' role='participant'/>"))
        del self.handler.calls[:]

    def test_sharedRosterEntry(self) -> None:
        """
        Issue 12 (W7): the room sends a newcomer's presence to each of our
        occupants; each is told it is new (as each had its own roster), and
        the service keeps one entry for both.
        """
        self.bothJoined()
        for to in (HAG, WICCA):
            self.receive(presence(f"{ROOM.full()}/firstwitch", to.full(),
                                  "<item affiliation='owner' role='moderator'/>"))
        self.assertEqual(
            [(real, o.nick, new) for _, real, o, new in self.handler.named("occupantAvailable")],
            [(HAG, "firstwitch", True), (WICCA, "firstwitch", True)],
        )
        self.assertIs(
            self.service.rosterOf(ROOM, HAG)["firstwitch"],
            self.service.rosterOf(ROOM, WICCA)["firstwitch"],
        )
        self.assertEqual(list(self.service.rosterOf(ROOM, HAG)), ["secondwitch", "firstwitch"])
        self.assertEqual(list(self.service.rosterOf(ROOM, WICCA)), ["thirdwitch", "firstwitch"])

    def test_updateSeenByOneOnly(self) -> None:
        """
        An update that reached one of our occupants and not yet the other:
        each sees the entry it was sent; once both have it, one entry again.
        """
        self.bothJoined()
        for to in (HAG, WICCA):
            self.receive(presence(f"{ROOM.full()}/firstwitch", to.full(),
                                  "<item affiliation='owner' role='moderator'/>"))
        self.receive(presence(f"{ROOM.full()}/firstwitch", HAG.full(),
                              "<item affiliation='owner' role='moderator'/>", extra="<show>away</show>"))
        self.assertEqual(self.service.rosterOf(ROOM, HAG)["firstwitch"].show, "away")
        self.assertIsNone(self.service.rosterOf(ROOM, WICCA)["firstwitch"].show)
        self.receive(presence(f"{ROOM.full()}/firstwitch", WICCA.full(),
                              "<item affiliation='owner' role='moderator'/>", extra="<show>away</show>"))
        self.assertIs(
            self.service.rosterOf(ROOM, HAG)["firstwitch"],
            self.service.rosterOf(ROOM, WICCA)["firstwitch"],
        )

    def test_differentViews(self) -> None:
        """
        XEP-0045 7.2.4: a room may show real JIDs to one occupant (a
        moderator) and not another; each keeps its own view, also when the
        occupant that shares the entry leaves.
        """
        self.bothJoined()
        self.receive(presence(f"{ROOM.full()}/firstwitch", HAG.full(),
                              "<item affiliation='owner' role='moderator' jid='crone1@shakespeare.lit/desktop'/>"))
        self.receive(presence(f"{ROOM.full()}/firstwitch", WICCA.full(),
                              "<item affiliation='owner' role='moderator'/>"))
        self.assertEqual(self.service.rosterOf(ROOM, HAG)["firstwitch"].jid, CRONE)
        self.assertIsNone(self.service.rosterOf(ROOM, WICCA)["firstwitch"].jid)
        self.service.leave(ROOM, HAG)
        self.receive(presence(f"{ROOM.full()}/thirdwitch", HAG.full(),
                              "<item affiliation='member' role='none'/><status code='110'/>", "unavailable"))
        self.assertEqual(self.service.rosterOf(ROOM, HAG), {})
        self.assertIsNone(self.service.rosterOf(ROOM, WICCA)["firstwitch"].jid)
        self.receive(presence(f"{ROOM.full()}/firstwitch", WICCA.full(),
                              "<item affiliation='owner' role='none'/>", "unavailable"))
        self.assertEqual(
            [(real, o.nick, o.jid) for _, real, o, _ in self.handler.named("occupantLeft")],
            [(WICCA, "firstwitch", None)],
        )

    def test_oneJoinedOneJoining(self) -> None:
        """
        One of our occupants is in the room and another still joining: the
        joining one gets the roster's presences as new and its join result
        holds them, whatever the joined one already knew.
        """
        self.join(HAG, "thirdwitch", roster=(
            presence(f"{ROOM.full()}/firstwitch", HAG.full(), "<item affiliation='owner' role='moderator'/>"),
        ))
        del self.handler.calls[:]
        d = self.service.join(ROOM, "secondwitch", WICCA)
        self.receive(presence(f"{ROOM.full()}/firstwitch", WICCA.full(),
                              "<item affiliation='owner' role='moderator'/>"))
        self.receive(presence(f"{ROOM.full()}/thirdwitch", WICCA.full(),
                              "<item affiliation='member' role='participant'/>"))
        self.assertEqual(self.service.stateOf(ROOM, WICCA), OccupantState.JOINING)
        self.receive(presence(f"{ROOM.full()}/secondwitch", HAG.full(),
                              "<item affiliation='member' role='participant'/>"))
        self.receive(presence(f"{ROOM.full()}/secondwitch", WICCA.full(),
                              "<item affiliation='member' role='participant'/><status code='110'/>"))
        result = self.successResultOf(d)
        self.assertEqual([o.nick for o in result.occupants], ["firstwitch", "thirdwitch"])
        self.assertEqual(
            [(real, o.nick, new) for _, real, o, new in self.handler.named("occupantAvailable")],
            [(WICCA, "firstwitch", True), (WICCA, "thirdwitch", True), (HAG, "secondwitch", True)],
        )
        self.assertEqual(list(self.service.rosterOf(ROOM, HAG)), ["firstwitch", "secondwitch"])

    def test_statusCodesInterned(self) -> None:
        """
        Issue 12 (W7): equal status-code sets are one object.
        """
        hag = self.join(HAG, "thirdwitch").self
        wicca = self.join(WICCA, "secondwitch").self
        self.assertEqual(hag.statusCodes, frozenset({110}))
        self.assertIs(hag.statusCodes, wicca.statusCodes)

    def test_unknownRecipientIgnored(self) -> None:
        """
        Stanzas for a real JID that is not in that room are left for other
        handlers.
        """
        self.receive(f"<message from='{ROOM.full()}/x' to='{HAG.full()}' type='groupchat'><body>b</body></message>")
        self.assertEqual(self.handler.calls, [])


class RosterTests(OccupantTestCase):
    """
    Occupants coming, changing and going after the join.
    """

    def test_presenceInOut(self) -> None:
        """
        XEP-0045 7.2.3, 7.7 and 7.14: a new occupant, its availability
        change (show xa), its exit.
        """
        self.join()
        self.receive(presence(f"{ROOM.full()}/secondwitch", HAG.full(),
                              "<item affiliation='admin' jid='wiccarocks@shakespeare.lit/laptop' role='moderator'/>"))
        self.receive(presence(f"{ROOM.full()}/secondwitch", HAG.full(),
                              "<item affiliation='admin' jid='wiccarocks@shakespeare.lit/laptop' role='moderator'/>",
                              extra="<show>xa</show><status>gone where the goblins go</status>"))
        self.receive(presence(f"{ROOM.full()}/secondwitch", HAG.full(),
                              "<item affiliation='admin' role='none'/>", "unavailable"))
        [(_, _, first, new1), (_, _, second, new2)] = self.handler.named("occupantAvailable")
        self.assertEqual((first.nick, first.jid, new1), ("secondwitch", WICCA, True))
        self.assertEqual((second.show, second.status, new2), ("xa", "gone where the goblins go", False))
        [(_, _, occupant, removal)] = self.handler.named("occupantLeft")
        self.assertEqual((occupant.nick, removal.reason), ("secondwitch", LeftReason.LEFT))
        self.assertEqual(self.service.rosterOf(ROOM, HAG), {})

    def test_otherNickChange(self) -> None:
        """
        XEP-0045 7.6 (as crone1 sees it): unavailable with status 303 and
        the new nick, then available under the new nick.
        """
        self.join(CRONE, "firstwitch", roster=(
            presence(f"{ROOM.full()}/thirdwitch", CRONE.full(),
                     "<item affiliation='member' jid='hag66@shakespeare.lit/pda' role='participant'/>"),
        ))
        self.receive(presence(f"{ROOM.full()}/thirdwitch", CRONE.full(),
                              "<item affiliation='member' jid='hag66@shakespeare.lit/pda' nick='oldhag' "
                              "role='participant'/><status code='303'/>", "unavailable"))
        self.receive(presence(f"{ROOM.full()}/oldhag", CRONE.full(),
                              "<item affiliation='member' jid='hag66@shakespeare.lit/pda' role='participant'/>"))
        [(_, _, old, occupant)] = self.handler.named("occupantNickChanged")
        self.assertEqual((old, occupant.nick, occupant.jid), ("thirdwitch", "oldhag", HAG))
        self.assertEqual(self.handler.named("occupantLeft"), [])
        self.assertFalse(self.handler.named("occupantAvailable")[-1][3])
        self.assertEqual(list(self.service.rosterOf(ROOM, CRONE)), ["oldhag"])

    def test_othersRemoved(self) -> None:
        """
        XEP-0045 8.2 and 9.1: the remaining occupants see a kick (307) and a
        ban (301) as such.
        """
        self.join(roster=(
            presence(f"{ROOM.full()}/pistol", HAG.full(), "<item affiliation='none' role='participant'/>"),
            presence(f"{ROOM.full()}/cambridge", HAG.full(), "<item affiliation='none' role='participant'/>"),
        ))
        self.receive(presence(f"{ROOM.full()}/pistol", HAG.full(),
                              "<item affiliation='none' role='none'/><status code='307'/>", "unavailable"))
        self.receive(presence(f"{ROOM.full()}/cambridge", HAG.full(),
                              "<item affiliation='outcast' jid='earlofcambridge@shakespeare.lit/stabber' role='none'/>"
                              "<status code='301'/>", "unavailable"))
        self.assertEqual(
            [(o.nick, r.reason) for _, _, o, r in self.handler.named("occupantLeft")],
            [("pistol", LeftReason.KICKED), ("cambridge", LeftReason.BANNED)],
        )


class NickChangeTests(OccupantTestCase):
    """
    Our own nick changes (XEP-0045 7.6; R-193, R-210).
    """

    def test_changeNick(self) -> None:
        """
        XEP-0045 7.6: the change is a presence to the new occupant JID; it
        completes on the 303 + 110 unavailable and the new nick's 110
        presence.
        """
        self.join()
        d = self.service.changeNick(ROOM, HAG, "oldhag")
        [stanza] = self.sent()
        self.assertEqual((stanza["from"], stanza["to"]), (HAG.full(), f"{ROOM.full()}/oldhag"))
        self.assertIsNone(stanza.getAttribute("type"))
        self.assertEqual(list(stanza.elements(NS_MUC, "x")), [])
        self.receive(presence(f"{ROOM.full()}/thirdwitch", HAG.full(),
                              "<item affiliation='member' jid='hag66@shakespeare.lit/pda' nick='oldhag' "
                              "role='participant'/><status code='303'/><status code='110'/>", "unavailable"))
        self.assertNoResult(d)
        self.receive(presence(f"{ROOM.full()}/oldhag", HAG.full(),
                              "<item affiliation='member' jid='hag66@shakespeare.lit/pda' role='participant'/>"
                              "<status code='110'/>"))
        self.assertEqual(self.successResultOf(d), "oldhag")
        self.assertEqual(self.handler.named("nickChanged"), [(ROOM, HAG, "thirdwitch", "oldhag")])
        self.assertEqual(self.service.nickOf(ROOM, HAG), "oldhag")
        self.assertEqual(self.service.stateOf(ROOM, HAG), OccupantState.JOINED)
        self.assertEqual(self.handler.named("left"), [])

    def test_conflict(self) -> None:
        """
        XEP-0045 7.6: a nick in use gives C{<conflict/>}:
        an L{OccupantError} with that condition (MSRP 425 above), the old
        nick stays.
        """
        self.join()
        d = self.service.changeNick(ROOM, HAG, "firstwitch")
        self.receive(errorPresence(HAG.full(), "409", "cancel", "conflict"))
        self.assertEqual(self.failureResultOf(d, OccupantError).value.condition, "conflict")
        self.assertEqual(self.service.nickOf(ROOM, HAG), "thirdwitch")
        self.assertEqual(self.service.stateOf(ROOM, HAG), OccupantState.JOINED)

    def test_lockedDown(self) -> None:
        """
        XEP-0045 7.6: nicks locked down give C{<not-acceptable/>}.
        """
        self.join()
        d = self.service.changeNick(ROOM, HAG, "oldhag")
        self.receive(errorPresence(HAG.full(), "406", "cancel", "not-acceptable"))
        self.assertEqual(self.failureResultOf(d, OccupantError).value.condition, "not-acceptable")

    def test_timeout(self) -> None:
        """
        No answer: L{OccupantTimeout}, and the occupant keeps its nick.
        """
        self.join()
        d = self.service.changeNick(ROOM, HAG, "oldhag")
        self.reactor.advance(30)
        self.failureResultOf(d, OccupantTimeout)
        self.assertEqual(self.service.stateOf(ROOM, HAG), OccupantState.JOINED)

    def test_serviceChangesNick(self) -> None:
        """
        A 303 on our own occupant that we did not ask for: the handler is
        told of the new nick.
        """
        self.join()
        self.receive(presence(f"{ROOM.full()}/thirdwitch", HAG.full(),
                              "<item affiliation='member' nick='hag' role='participant'/>"
                              "<status code='303'/><status code='110'/>", "unavailable"))
        self.receive(presence(f"{ROOM.full()}/hag", HAG.full(),
                              "<item affiliation='member' role='participant'/><status code='110'/>"))
        self.assertEqual(self.handler.named("nickChanged"), [(ROOM, HAG, "thirdwitch", "hag")])


class RemovalTests(OccupantTestCase):
    """
    Our occupant removed by the room (R-199): each code a distinct reason.
    """

    def removed(self, items: str, sender: str = f"{ROOM.full()}/thirdwitch") -> Removal:
        self.join()
        d = self.service.sendGroupchat(ROOM, HAG, "pending")
        self.receive(presence(sender, HAG.full(), items, "unavailable"))
        self.failureResultOf(d, NotInRoom)
        [(roomJID, realJID, removal)] = self.handler.named("left")
        self.assertEqual((roomJID, realJID), (ROOM, HAG))
        self.assertIsNone(self.service.stateOf(ROOM, HAG))
        return removal

    def test_kick(self) -> None:
        """
        XEP-0045 8.2 "Service Removes Kicked Occupant": 307, actor and reason.
        """
        removal = self.removed(
            "<item affiliation='none' role='none'><actor jid='fluellen@shakespeare.lit'/>"
            "<reason>Avaunt, you cullion!</reason></item><status code='307'/>"
        )
        self.assertEqual(removal.reason, LeftReason.KICKED)
        self.assertEqual((removal.actor, removal.text), ("fluellen@shakespeare.lit", "Avaunt, you cullion!"))

    def test_ban(self) -> None:
        """
        XEP-0045 9.1 "Service Removes Banned User": 301 (no 110 in the
        example: our nick identifies us).
        """
        removal = self.removed(
            "<item affiliation='outcast' role='none'><actor jid='kinghenryv@shakespeare.lit'/>"
            "<reason>Treason</reason></item><status code='301'/>"
        )
        self.assertEqual((removal.reason, removal.text), (LeftReason.BANNED, "Treason"))

    def test_affiliationChange(self) -> None:
        """
        XEP-0045 9.4 "Service Removes Non-Member": 321.
        """
        removal = self.removed("<item affiliation='none' role='none'><actor nick='TheBard'/></item>"
                               "<status code='321'/>")
        self.assertEqual((removal.reason, removal.actor), (LeftReason.AFFILIATION_CHANGED, "TheBard"))

    def test_membersOnly(self) -> None:
        """
        XEP-0045 10.2 (room made members-only): 322.
        """
        removal = self.removed("<item affiliation='none' role='none'/><status code='322'/>")
        self.assertEqual(removal.reason, LeftReason.MEMBERS_ONLY)

    def test_shutdown(self) -> None:
        """
        XEP-0045 status 332: the service is shutting down.
        """
        removal = self.removed("<item affiliation='none' role='none'/><status code='110'/><status code='332'/>")
        self.assertEqual(removal.reason, LeftReason.SHUTDOWN)

    def test_technical(self) -> None:
        """
        XEP-0045 status 333 (with 307, as Prosody sends it): technical
        removal, not a kick.
        """
        removal = self.removed("<item affiliation='none' role='none'/><status code='110'/>"
                               "<status code='307'/><status code='333'/>")
        self.assertEqual(removal.reason, LeftReason.TECHNICAL)
        self.assertEqual(removal.statusCodes, frozenset({110, 307, 333}))

    def test_destroyed(self) -> None:
        """
        XEP-0045 10.9: the room is destroyed, with an alternate venue.
        """
        removal = self.removed(
            "<item affiliation='none' role='none'/>"
            "<destroy jid='coven@chat.shakespeare.lit'><reason>Macbeth doth come.</reason></destroy>"
        )
        self.assertEqual(removal.reason, LeftReason.DESTROYED)
        self.assertEqual((removal.alternate, removal.text), (JID("coven@chat.shakespeare.lit"), "Macbeth doth come."))

    def test_precedence(self) -> None:
        """
        Several codes: destroy > 332 > 333 > 301 > 321 > 322 > 307.
        """
        self.assertEqual(leftReason(frozenset({307, 333})), LeftReason.TECHNICAL)
        self.assertEqual(leftReason(frozenset({307, 301})), LeftReason.BANNED)
        self.assertEqual(leftReason(frozenset({332, 333})), LeftReason.SHUTDOWN)
        self.assertEqual(leftReason(frozenset({332}), destroyed=True), LeftReason.DESTROYED)
        self.assertEqual(leftReason(frozenset({110})), LeftReason.LEFT)


class LeaveTests(OccupantTestCase):
    """
    Exiting a room (XEP-0045 7.14).
    """

    def test_leave(self) -> None:
        """
        XEP-0045 7.14: unavailable presence to the occupant JID with the
        exit status; the Deferred fires on the 110 unavailable.
        """
        self.join()
        d = self.service.leave(ROOM, HAG, status="gone where the goblins go")
        [stanza] = self.sent()
        self.assertEqual((stanza["type"], stanza["to"], stanza["from"]),
                         ("unavailable", f"{ROOM.full()}/thirdwitch", HAG.full()))
        self.assertEqual(str(child(stanza, "status")), "gone where the goblins go")
        self.assertNoResult(d)
        self.receive(presence(f"{ROOM.full()}/thirdwitch", HAG.full(),
                              "<item affiliation='member' role='none'/><status code='110'/>", "unavailable"))
        self.assertTrue(self.successResultOf(d))
        [(_, _, removal)] = self.handler.named("left")
        self.assertEqual(removal.reason, LeftReason.LEFT)
        self.assertIsNone(self.service.stateOf(ROOM, HAG))

    def test_leaveTimeout(self) -> None:
        """
        No self-presence in time: the Deferred fires with C{False} and the
        occupant is forgotten.
        """
        self.join()
        d = self.service.leave(ROOM, HAG)
        self.reactor.advance(30)
        self.assertFalse(self.successResultOf(d))
        self.assertIsNone(self.service.stateOf(ROOM, HAG))

    def test_leaveUnknown(self) -> None:
        """
        Leaving a room one is not in fails with L{NotInRoom}.
        """
        self.failureResultOf(self.service.leave(ROOM, HAG), NotInRoom)


class MessageTests(OccupantTestCase):
    """
    Subject, history and live messages (XEP-0045 7.2.15, 7.4, 8.1; R-196, R-211).
    """

    def test_historySubjectLive(self) -> None:
        """
        XEP-0045 7.2.15 "Delivery of Discussion History", then the subject
        (8.1), then a live message: history has timezone-aware stamps and is
        flagged; the live one is not.
        """
        self.join()
        self.receive(
            f"<message from='{ROOM.full()}/firstwitch' to='{HAG.full()}' type='groupchat'>"
            "<body>Thrice the brinded cat hath mew'd.</body>"
            "<delay xmlns='urn:xmpp:delay' from='crone1@shakespeare.lit/desktop' stamp='2002-10-13T23:58:37Z'/>"
            "</message>"
            f"<message from='{ROOM.full()}/secondwitch' to='{HAG.full()}' type='groupchat'>"
            "<body>Thrice and once the hedge-pig whined.</body>"
            "<delay xmlns='urn:xmpp:delay' from='wiccarocks@shakespeare.lit/laptop' stamp='2002-10-13T23:58:43Z'/>"
            "</message>"
            f"<message from='{ROOM.full()}/secondwitch' to='{HAG.full()}' type='groupchat'>"
            "<subject>Fire Burn and Cauldron Bubble!</subject></message>"
            f"<message from='{ROOM.full()}/firstwitch' to='{HAG.full()}' type='groupchat' id='live1'>"
            "<body>By the pricking of my thumbs</body></message>"
        )
        messages = [m for _, _, m in self.handler.named("groupchatReceived")]
        self.assertEqual(
            [(m.nick, m.history, m.stamp) for m in messages],
            [
                ("firstwitch", True, datetime.datetime(2002, 10, 13, 23, 58, 37, tzinfo=UTC)),
                ("secondwitch", True, datetime.datetime(2002, 10, 13, 23, 58, 43, tzinfo=UTC)),
                ("firstwitch", False, None),
            ],
        )
        self.assertIsNotNone(messages[0].stamp.tzinfo)  # type: ignore[union-attr]
        self.assertEqual(messages[2].stanzaID, "live1")
        [(_, _, subject)] = self.handler.named("subjectReceived")
        self.assertEqual(subject, Subject("Fire Burn and Cauldron Bubble!", "secondwitch", None))

    def test_emptySubject(self) -> None:
        """
        R-189 (the service side of it): a room without subject sends an
        empty C{<subject/>}; it is a subject, with empty text.
        """
        self.join()
        self.receive(f"<message from='{ROOM.full()}' to='{HAG.full()}' type='groupchat'><subject/></message>")
        [(_, _, subject)] = self.handler.named("subjectReceived")
        self.assertEqual((subject.text, subject.who), ("", None))

    def test_sendAndReflection(self) -> None:
        """
        XEP-0045 7.4, R-196: the message goes to the room with its id and
        origin-id; its reflection (same id) fires the Deferred and reaches
        the handler flagged as reflection of that id.
        """
        self.join()
        d = self.service.sendGroupchat(ROOM, HAG, "Harpier cries: 'tis time, 'tis time.", "8gbx1g4p")
        [stanza] = self.sent()
        self.assertEqual((stanza["type"], stanza["to"], stanza["from"], stanza["id"]),
                         ("groupchat", ROOM.full(), HAG.full(), "8gbx1g4p"))
        self.assertEqual(str(child(stanza, "body")), "Harpier cries: 'tis time, 'tis time.")
        self.assertEqual(next(stanza.elements("urn:xmpp:sid:0", "origin-id"))["id"], "8gbx1g4p")
        self.assertNoResult(d)
        self.receive(
            f"<message from='{ROOM.full()}/thirdwitch' to='{HAG.full()}' type='groupchat' id='8gbx1g4p'>"
            "<body>Harpier cries: 'tis time, 'tis time.</body></message>"
        )
        message = self.successResultOf(d)
        self.assertEqual((message.reflectionOf, message.fromSelf), ("8gbx1g4p", True))
        [(_, _, delivered)] = self.handler.named("groupchatReceived")
        self.assertEqual(delivered, message)

    def test_reflectionByOriginID(self) -> None:
        """
        A room that rewrites the id but keeps XEP-0359 origin-id.
        """
        self.join()
        d = self.service.sendGroupchat(ROOM, HAG, "hello", "c1")
        self.receive(
            f"<message from='{ROOM.full()}/thirdwitch' to='{HAG.full()}' type='groupchat' id='server9'>"
            "<body>hello</body><origin-id xmlns='urn:xmpp:sid:0' id='c1'/></message>"
        )
        self.assertEqual(self.successResultOf(d).reflectionOf, "c1")

    def test_reflectionByBody(self) -> None:
        """
        A room that keeps neither: the oldest pending message with the same
        body from our own nick.
        """
        self.join()
        d1 = self.service.sendGroupchat(ROOM, HAG, "one", "a")
        d2 = self.service.sendGroupchat(ROOM, HAG, "two", "b")
        self.receive(f"<message from='{ROOM.full()}/thirdwitch' to='{HAG.full()}' type='groupchat'>"
                     "<body>two</body></message>")
        self.assertEqual(self.successResultOf(d2).reflectionOf, "b")
        self.assertNoResult(d1)

    def test_messageError(self) -> None:
        """
        XEP-0045 7.4: a visitor's message refused with C{<forbidden/>}: the
        pending send fails with that stanza error.
        """
        self.join()
        d = self.service.sendGroupchat(ROOM, HAG, "Harpier cries", "m7")
        self.receive(
            f"<message from='{ROOM.full()}' to='{HAG.full()}' type='error' id='m7'>"
            "<body>Harpier cries</body><error code='403' type='auth'>"
            "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
        )
        failure = self.failureResultOf(d, error.StanzaError)
        self.assertEqual(failure.value.condition, "forbidden")
        self.assertEqual(self.handler.named("groupchatReceived"), [])

    def test_reflectionTimeoutThenError(self) -> None:
        """
        R-211: the wait is bounded; an error coming after it goes to
        L{IOccupantHandler.messageFailed}.
        """
        self.join()
        d = self.service.sendGroupchat(ROOM, HAG, "slow", "m8")
        self.reactor.advance(10)
        self.failureResultOf(d, OccupantTimeout)
        self.receive(
            f"<message from='{ROOM.full()}' to='{HAG.full()}' type='error' id='m8'>"
            "<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
        )
        [(_, _, stanzaID, reason)] = self.handler.named("messageFailed")
        self.assertEqual((stanzaID, reason.condition), ("m8", "resource-constraint"))

    def test_notInRoom(self) -> None:
        """
        Sending for an occupant not in the room fails at once.
        """
        self.failureResultOf(self.service.sendGroupchat(ROOM, HAG, "x"), NotInRoom)


class PrivateMessageTests(OccupantTestCase):
    """
    Private messages (XEP-0045 7.5; R-197, C.2.3).
    """

    def test_send(self) -> None:
        """
        R-197: type chat to room/nick with an empty muc#user C{<x/>}.
        """
        self.join()
        stanzaID = self.service.sendPrivate(ROOM, HAG, "firstwitch", "I'll give thee a wind.")
        [stanza] = self.sent()
        self.assertEqual((stanza["type"], stanza["to"], stanza["from"], stanza["id"]),
                         ("chat", f"{ROOM.full()}/firstwitch", HAG.full(), stanzaID))
        [x] = list(stanza.elements(NS_MUC_USER, "x"))
        self.assertEqual(list(x.elements()), [])

    def test_receive(self) -> None:
        """
        XEP-0045 7.5 "Recipient Receives the Private Message".
        """
        self.join(CRONE, "firstwitch")
        self.receive(
            f"<message from='{ROOM.full()}/secondwitch' to='{CRONE.full()}' type='chat'>"
            f"<body>I'll give thee a wind.</body><x xmlns='{MUC_USER}'/></message>"
        )
        [(_, realJID, message)] = self.handler.named("privateMessageReceived")
        self.assertEqual((realJID, message.nick, message.body), (CRONE, "secondwitch", "I'll give thee a wind."))

    def test_error(self) -> None:
        """
        XEP-0045 7.5: a private message to a nick not in the room comes back
        with C{<item-not-found/>}; the handler is told with the id.
        """
        self.join()
        stanzaID = self.service.sendPrivate(ROOM, HAG, "nobody", "hello", "p1")
        self.receive(
            f"<message from='{ROOM.full()}/nobody' to='{HAG.full()}' type='error' id='{stanzaID}'>"
            "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
        )
        [(_, _, failedID, reason)] = self.handler.named("messageFailed")
        self.assertEqual((failedID, reason.condition), ("p1", "item-not-found"))


class InvitationTests(OccupantTestCase):
    """
    Invitations (XEP-0045 7.8; R-198, R-222).
    """

    def test_mediatedInvitation(self) -> None:
        """
        XEP-0045 7.8.2 "Room Sends Invitation to Invitee on Behalf of
        Invitor", to a bare JID of ours, no occupant needed.
        """
        self.receive(
            f"<message from='{ROOM.full()}' to='hecate@shakespeare.lit'>"
            f"<x xmlns='{MUC_USER}'><invite from='crone1@shakespeare.lit/desktop'>"
            "<reason>\n        Hey Hecate, this is the place for all good witches!\n      </reason>"
            "</invite><password>cauldronburn</password></x></message>"
        )
        [(realJID, invitation)] = self.handler.named("invitationReceived")
        self.assertEqual(realJID, JID("hecate@shakespeare.lit"))
        self.assertEqual(
            invitation,
            Invitation(ROOM, JID("hecate@shakespeare.lit"), CRONE,
                       "Hey Hecate, this is the place for all good witches!", "cauldronburn"),
        )

    def test_directInvitation(self) -> None:
        """
        XEP-0249 direct invitation.
        """
        self.receive(
            f"<message from='crone1@shakespeare.lit/desktop' to='{HAG.full()}'>"
            f"<x xmlns='jabber:x:conference' jid='{ROOM.full()}' reason='Hey'/></message>"
        )
        [(_, invitation)] = self.handler.named("invitationReceived")
        self.assertEqual((invitation.roomJID, invitation.inviter, invitation.direct), (ROOM, CRONE, True))

    def test_decline(self) -> None:
        """
        XEP-0045 7.8.2 "Room Informs Invitor that Invitation Was Declined".
        """
        self.receive(
            f"<message from='{ROOM.full()}' to='{CRONE.full()}'>"
            f"<x xmlns='{MUC_USER}'><decline from='hecate@shakespeare.lit'>"
            "<reason>Sorry, I'm too busy right now.</reason></decline></x></message>"
        )
        [(_, decline)] = self.handler.named("declineReceived")
        self.assertEqual(decline, Decline(ROOM, JID("hecate@shakespeare.lit"), "Sorry, I'm too busy right now."))

    def test_sendInvitation(self) -> None:
        """
        R-198, XEP-0045 7.8.2 "Occupant Sends an Invitation by Way of Room".
        """
        self.join(CRONE, "firstwitch")
        self.service.invite(ROOM, CRONE, JID("hecate@shakespeare.lit"), "Hey Hecate")
        [stanza] = self.sent()
        self.assertEqual((stanza["to"], stanza["from"], stanza.getAttribute("type")),
                         (ROOM.full(), CRONE.full(), None))
        invite = next(next(stanza.elements(NS_MUC_USER, "x")).elements(NS_MUC_USER, "invite"))
        self.assertEqual(invite["to"], "hecate@shakespeare.lit")
        self.assertEqual(str(next(invite.elements(NS_MUC_USER, "reason"))), "Hey Hecate")


class ChatStateTests(OccupantTestCase):
    """
    XEP-0085 in rooms (R-201, R-202, R-225).
    """

    def test_receive(self) -> None:
        """
        Standalone states in groupchat and private; C{gone} in groupchat
        ignored (R-202); a state on a message rides with it; our own
        reflected state is not echoed.
        """
        self.join()
        cs = NS_CHATSTATES
        self.receive(
            f"<message from='{ROOM.full()}/firstwitch' to='{HAG.full()}' type='groupchat'><composing xmlns='{cs}'/></message>"
            f"<message from='{ROOM.full()}/firstwitch' to='{HAG.full()}' type='groupchat'><gone xmlns='{cs}'/></message>"
            f"<message from='{ROOM.full()}/thirdwitch' to='{HAG.full()}' type='groupchat'><paused xmlns='{cs}'/></message>"
            f"<message from='{ROOM.full()}/firstwitch' to='{HAG.full()}' type='chat'><composing xmlns='{cs}'/>"
            f"<x xmlns='{MUC_USER}'/></message>"
            f"<message from='{ROOM.full()}/firstwitch' to='{HAG.full()}' type='groupchat'><body>hi</body>"
            f"<active xmlns='{cs}'/></message>"
        )
        self.assertEqual(
            [(nick, state, private) for _, _, nick, state, private in self.handler.named("chatStateReceived")],
            [("firstwitch", ChatStateNotification.COMPOSING, False), ("firstwitch", ChatStateNotification.COMPOSING, True)],
        )
        [(_, _, message)] = self.handler.named("groupchatReceived")
        self.assertEqual(message.chatState, ChatStateNotification.ACTIVE)

    def test_send(self) -> None:
        """
        Standalone states to the room and to a nick; never C{gone} to the
        room; a state on a groupchat message.
        """
        self.join()
        self.service.sendChatState(ROOM, HAG, ChatStateNotification.COMPOSING)
        self.service.sendChatState(ROOM, HAG, ChatStateNotification.GONE, nick="firstwitch")
        self.assertRaises(ValueError, self.service.sendChatState, ROOM, HAG, ChatStateNotification.GONE)
        self.failureResultOf(self.service.sendGroupchat(ROOM, HAG, "x", chatState=ChatStateNotification.GONE), ValueError)
        self.service.sendGroupchat(ROOM, HAG, "hi", "s1", chatState=ChatStateNotification.ACTIVE)
        toRoom, toNick, message = self.sent()
        self.assertEqual((toRoom["type"], [c.name for c in toRoom.elements()]), ("groupchat", ["composing"]))
        self.assertEqual((toNick["type"], toNick["to"]), ("chat", f"{ROOM.full()}/firstwitch"))
        self.assertEqual([c.name for c in toNick.elements() if c.uri == NS_CHATSTATES], ["gone"])
        self.assertEqual([c.name for c in message.elements() if c.uri == NS_CHATSTATES], ["active"])


class PingTests(OccupantTestCase):
    """
    XEP-0410 and disco#info to our users' real JIDs.
    """

    def iq(self, sender: str, to: str, payload: str, stanzaID: str = "q1") -> domish.Element:
        self.receive(f"<iq from='{sender}' to='{to}' id='{stanzaID}' type='get'>{payload}</iq>")
        [answer] = self.sent()
        return answer

    def test_pingFromRoom(self) -> None:
        """
        XEP-0410 3.2 "Server Reflection of Ping": the room forwards a
        self-ping (or checks a ghost) to our real JID: result.
        """
        self.join()
        answer = self.iq(f"{ROOM.full()}/thirdwitch", HAG.full(), "<ping xmlns='urn:xmpp:ping'/>", "c0ffee-s2c1")
        self.assertEqual((answer["type"], answer["id"], answer["to"], answer["from"]),
                         ("result", "c0ffee-s2c1", f"{ROOM.full()}/thirdwitch", HAG.full()))

    def test_pingNotJoined(self) -> None:
        """
        A known room pinging a real JID that is not in it: not-acceptable
        (XEP-0410's "not joined"); a real JID with no occupant at all:
        service-unavailable.
        """
        self.join(CRONE, "firstwitch")
        answer = self.iq(f"{ROOM.full()}/thirdwitch", HAG.full(), "<ping xmlns='urn:xmpp:ping'/>")
        self.assertEqual(answer["type"], "error")
        self.assertEqual(child(answer, "error").firstChildElement().name, "not-acceptable")
        answer = self.iq("someone@else.lit/x", HAG.full(), "<ping xmlns='urn:xmpp:ping'/>")
        self.assertEqual(child(answer, "error").firstChildElement().name, "service-unavailable")

    def test_discoInfo(self) -> None:
        """
        XEP-0045 6.7 "Contact Returns Disco Info Results": an occupant's real
        JID is a client that speaks MUC and ping.
        """
        self.join()
        answer = self.iq(f"{ROOM.full()}/firstwitch", HAG.full(),
                         "<query xmlns='http://jabber.org/protocol/disco#info'/>")
        query = answer.firstChildElement()
        identity = child(query, "identity")
        self.assertEqual((answer["type"], identity["category"], identity["type"]), ("result", "client", "pc"))
        features = {f["var"] for f in query.elements() if f.name == "feature"}
        self.assertIn("http://jabber.org/protocol/muc", features)
        self.assertIn("urn:xmpp:ping", features)
        answer = self.iq("x@y.lit/z", WICCA.full(), "<query xmlns='http://jabber.org/protocol/disco#info'/>")
        self.assertEqual(answer["type"], "error")

    def test_selfPing(self) -> None:
        """
        XEP-0410 3.2: result -> joined; service-unavailable -> joined;
        not-acceptable ("Server Response to a Non-Occupant") -> not joined;
        no answer -> unknown.
        """
        self.join()
        outcomes = []
        for reply in (
            "type='result'",
            "type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error",
            "type='error'><error type='cancel' by='darkcave@macbeth.shakespeare.lit'>"
            "<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error",
        ):
            d = self.service.selfPing(ROOM, HAG)
            [iq] = self.sent()
            self.assertEqual((iq["to"], iq["from"], iq.firstChildElement().uri),
                             (f"{ROOM.full()}/thirdwitch", HAG.full(), "urn:xmpp:ping"))
            end = "</iq>" if reply.endswith("error") else ""
            closing = ">" + end if end else "/>"
            self.receive(f"<iq from='{ROOM.full()}/thirdwitch' to='{HAG.full()}' id='{iq['id']}' {reply}{closing}")
            outcomes.append(self.successResultOf(d))
        d = self.service.selfPing(ROOM, HAG)
        self.reactor.advance(30)
        outcomes.append(self.successResultOf(d))
        self.assertEqual(outcomes, [SelfPingResult.JOINED, SelfPingResult.JOINED,
                                    SelfPingResult.NOT_JOINED, SelfPingResult.UNKNOWN])


class LinkTests(OccupantTestCase):
    """
    The component link going down and up (docs/design.md: rejoin after a
    reconnection).
    """

    def test_downAndUp(self) -> None:
        """
        On link loss pending operations fail with L{LinkLost}, occupants are
        marked for rejoin and the handler is told; when the link is back it
        is told again, and L{OccupantService.rejoinAll} joins them with the
        history since the loss.
        """
        self.join(HAG, "thirdwitch")
        self.join(WICCA, "secondwitch")
        pending = self.service.sendGroupchat(ROOM, HAG, "lost")
        self.reactor.advance(5)
        self.protocol.connectionLost(Failure(ConnectionError("gone")))
        self.failureResultOf(pending, LinkLost)
        [(domain, lost)] = self.handler.named("linkLost")
        self.assertEqual((domain, sorted(r.full() for _, r in lost)), (DOMAIN, [HAG.full(), WICCA.full()]))
        self.assertEqual(self.service.stateOf(ROOM, HAG), OccupantState.NEEDS_REJOIN)
        self.failureResultOf(self.service.sendGroupchat(ROOM, HAG, "x"), NotInRoom)

        self.reactor.advance(60)
        self.connect()
        [(domain, restored)] = self.handler.named("linkRestored")
        self.assertEqual(sorted(r.full() for _, r in restored), [HAG.full(), WICCA.full()])

        d = self.service.rejoinAll()
        joins = self.sent()
        self.assertEqual(sorted(s["to"] for s in joins),
                         [f"{ROOM.full()}/secondwitch", f"{ROOM.full()}/thirdwitch"])
        history = next(next(joins[0].elements(NS_MUC, "x")).elements(NS_MUC, "history"))
        self.assertEqual(history["since"], "1970-01-01T00:00:05Z")
        for realJID, nick in ((HAG, "thirdwitch"), (WICCA, "secondwitch")):
            self.receive(presence(f"{ROOM.full()}/{nick}", realJID.full(), "<status code='110'/>"))
        results = self.successResultOf(d)
        self.assertEqual(sorted(type(value).__name__ for _, value in results), ["JoinResult", "JoinResult"])
        self.assertEqual(self.service.stateOf(ROOM, HAG), OccupantState.JOINED)

    def test_lostWhileJoining(self) -> None:
        """
        A join under way fails with L{LinkLost} and is forgotten.
        """
        d = self.service.join(ROOM, "thirdwitch", HAG)
        self.protocol.connectionLost(Failure(ConnectionError("gone")))
        self.failureResultOf(d, LinkLost)
        self.assertIsNone(self.service.stateOf(ROOM, HAG))
        [(_, lost)] = self.handler.named("linkLost")
        self.assertEqual(lost, [])


class SharedLinkDiscoTests(OccupantTestCase):
    """
    The occupant service and the user domain's disco handlers on one link
    (as the service tree will put them): each IQ gets exactly one answer.
    """

    def setUp(self) -> None:
        super().setUp()
        from stoxgw.xmpp.disco import GatewayDisco, discoHandlers

        for handler in discoHandlers(GatewayDisco(DOMAIN)):
            handler.setHandlerParent(self.link.streamManager)
        self.transport.clear()

    def test_discoInfoToOccupantAnsweredOnce(self) -> None:
        """
        XEP-0045 6.7: disco#info to an occupant's real JID is answered by
        the occupant service only (wokkel's disco handler does not add an
        item-not-found).
        """
        self.join()
        self.sent()
        self.receive(
            f"<iq from='{ROOM.full()}/firstwitch' to='{HAG.full()}' id='d1' type='get'>"
            "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        )
        answers = self.sent()
        self.assertEqual([(a["type"], a["id"]) for a in answers], [("result", "d1")])

    def test_discoInfoToDomain(self) -> None:
        """
        XEP-0030: the user domain itself is still answered, once, as a
        gateway/sip.
        """
        self.receive(
            f"<iq from='romeo@montague.lit/orchard' to='{DOMAIN}' id='d2' type='get'>"
            "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        )
        [answer] = self.sent()
        identity = child(answer.firstChildElement(), "identity")
        self.assertEqual((answer["type"], identity["category"], identity["type"]), ("result", "gateway", "sip"))


class UnhandledTests(OccupantTestCase):
    """
    Issue 11 items 3 and 4: every stanza to our domain gets an answer
    (RFC 6120 sections 8.2.3 and 8.3), so that a server never waits on us
    and drops occupants we no longer have.
    """

    def errorOf(self, stanza: domish.Element) -> str:
        return str(child(stanza, "error").firstChildElement().name)

    def test_iqUnknownNamespace(self) -> None:
        """
        jabber:iq:version (get) and an unknown namespace (set) to a SIP
        user's JID: service-unavailable, the id kept.
        """
        self.receive(
            f"<iq from='juliet@capulet.lit/balcony' to='{HAG.full()}' id='v1' type='get'>"
            "<query xmlns='jabber:iq:version'/></iq>"
        )
        [answer] = self.sent()
        self.assertEqual((answer["type"], answer["id"]), ("error", "v1"))
        self.assertEqual(self.errorOf(answer), "service-unavailable")
        self.receive(
            f"<iq from='juliet@capulet.lit/balcony' to='{HAG.full()}' id='s1' type='set'>"
            "<x xmlns='urn:example:unknown'/></iq>"
        )
        [answer] = self.sent()
        self.assertEqual(self.errorOf(answer), "service-unavailable")

    def test_domainPing(self) -> None:
        """
        XEP-0199 ping of the component domain: result.
        """
        self.receive(
            f"<iq from='capulet.lit' to='{DOMAIN}' id='p1' type='get'>"
            "<ping xmlns='urn:xmpp:ping'/></iq>"
        )
        [answer] = self.sent()
        self.assertEqual((answer["type"], answer["id"]), ("result", "p1"))

    def test_chatToSIPUser(self) -> None:
        """
        A chat message to a SIP user's JID (no room): service-unavailable,
        never dropped in silence.
        """
        self.receive(
            f"<message from='juliet@capulet.lit/balcony' to='{HAG.full()}' type='chat' id='c1'>"
            "<body>hello?</body></message>"
        )
        [answer] = self.sent()
        self.assertEqual((answer["type"], answer["id"], answer["to"]), ("error", "c1", "juliet@capulet.lit/balcony"))
        self.assertEqual(self.errorOf(answer), "service-unavailable")

    def test_ghost(self) -> None:
        """
        A room still sends presence and groupchat to an occupant we do not
        have (a ghost kept across its restart): an error for each, so it
        drops the ghost; an unavailable presence or an error gets nothing.
        """
        self.receive(presence(f"{ROOM.full()}/firstwitch", HAG.full(), "<item affiliation='none' role='participant'/>"))
        [answer] = self.sent()
        self.assertEqual((answer.name, answer["type"]), ("presence", "error"))
        self.receive(
            f"<message from='{ROOM.full()}/firstwitch' to='{HAG.full()}' type='groupchat'><body>hi</body></message>"
        )
        [answer] = self.sent()
        self.assertEqual((answer.name, answer["type"]), ("message", "error"))
        self.receive(presence(f"{ROOM.full()}/firstwitch", HAG.full(), "", "unavailable"))
        self.receive(
            f"<message from='{ROOM.full()}/firstwitch' to='{HAG.full()}' type='error'><body>x</body></message>"
        )
        self.assertEqual(self.sent(), [])

    def test_knownOccupantUntouched(self) -> None:
        """
        Stanzas for an occupant we have are handled as before: no error.
        """
        self.join()
        self.receive(presence(f"{ROOM.full()}/firstwitch", HAG.full(), "<item affiliation='none' role='participant'/>"))
        self.assertEqual(self.sent(), [])
class FuzzFoundTests(OccupantTestCase):
    """
    Bugs found by fuzz/fuzz_xmpp_occupant.py.
    """

    def test_messageErrorUnknownCode(self) -> None:
        """
        A message error with only a legacy code Twisted does not know
        (<error code='918'/>, no defined condition) fails the pending send
        with a stanza error; nothing is logged as a failure.
        (Twisted's exceptionFromStanza raises KeyError for it.)
        """
        self.join()
        d = self.service.sendGroupchat(ROOM, HAG, "Harpier cries", "m7")
        self.receive(
            f"<message from='{ROOM.full()}' to='{HAG.full()}' type='error' id='m7'>"
            "<body>Harpier cries</body><error code='918' type='auth'/></message>"
        )
        self.failureResultOf(d, error.StanzaError)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_entryErrorUnknownCode(self) -> None:
        """
        The same in an entry error: the join fails at once (not after the
        join timeout) with an OccupantError.
        """
        d = self.service.join(ROOM, "thirdwitch", HAG)
        self.receive(
            f"<presence from='{ROOM.full()}' to='{HAG.full()}' type='error'>"
            "<error code='918' type='cancel'/></presence>"
        )
        self.failureResultOf(d, OccupantError)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_directInvitationBadRoomJID(self) -> None:
        """
        A XEP-0249 invitation to a room JID with an empty domain label
        (Twisted's JID() raises IndexError, not InvalidFormat, for it) is
        ignored like any malformed one; nothing is logged as a failure.
        """
        for room in ("darkcave@macbeth..lit", ".lit", ""):
            self.receive(
                f"<message from='crone1@shakespeare.lit/desktop' to='{HAG.full()}'>"
                f"<x xmlns='jabber:x:conference' jid='{room}' reason='Hey'/></message>"
            )
        self.assertEqual(self.handler.named("invitationReceived"), [])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_destroyedBadAlternate(self) -> None:
        """
        XEP-0045 10.9: a room destroyed with an alternate venue whose JID has
        an empty domain label still removes the occupant (the alternate is
        dropped); nothing is logged as a failure.  Today the IndexError
        escapes the presence handler and the SIP user stays a ghost.
        """
        self.join()
        self.receive(
            f"<presence from='{ROOM.full()}/thirdwitch' to='{HAG.full()}' type='unavailable'>"
            "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/>"
            "<destroy jid='coven@chat..lit'><reason>Macbeth doth come.</reason></destroy>"
            "<status code='110'/></x></presence>"
        )
        self.assertEqual(len(self.handler.named("left")), 1)
        self.assertIsNone(self.service.stateOf(ROOM, HAG))
        self.assertEqual(self.flushLoggedErrors(), [])
