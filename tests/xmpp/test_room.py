# -*- test-case-name: tests.xmpp.test_room -*-
"""
Tests for L{stoxgw.xmpp.room}: the MUC service emulation of RFC 7702 section
5 ("Gateway A"), checked against XEP-0045 (v1.34) examples and the R-ids of
SPEC.md D.8.

The helpers (a recording manager, a recording backend, canonical XML trees)
are also used by L{tests.xmpp.test_disco}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.words.protocols.jabber.xmlstream import XMPPHandlerCollection
from twisted.words.xish import domish
from wokkel.generic import parseXml
from wokkel.test.helpers import XmlStreamStub
from zope.interface import implementer

from datetime import datetime, timedelta, timezone

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber import error
from twisted.words.protocols.jabber.jid import JID
from zope.interface.verify import verifyObject

from stoxgw.rooms.model import (
    Anonymity,
    HistoryEntry,
    HistoryRequest,
    NickConflict,
    Participant,
    RemovalReason,
    Role,
    Room,
    RoomSettings,
    Subject,
    UnknownParticipant,
)
from stoxgw.xmpp.room import JoinAccepted, MUCService, mucError, parseJoin

import stoxgw.xmpp  # noqa: F401  (wokkel compat first)
from stoxgw.xmpp.room import IRoomBackend

#: Namespaces that mean "the stream's default" for stanzas and their children.
_DEFAULT_NAMESPACES = (None, "", "jabber:client", "jabber:component:accept")

#: Leave a backend call unanswered: the test fires C{backend.deferreds[name]}.
PENDING = object()


class RecordingManager(XMPPHandlerCollection):
    """
    Stands in for a wokkel stream manager: records what is sent.
    """

    def __init__(self) -> None:
        super().__init__()
        self.output: list[domish.Element] = []

    def send(self, obj: domish.Element) -> None:
        self.output.append(obj)


def connect(*handlers: Any) -> tuple[RecordingManager, XmlStreamStub]:
    """
    Put C{handlers} on a recording manager and initialise them on a stub
    stream.
    """
    manager = RecordingManager()
    stub = XmlStreamStub()
    for handler in handlers:
        handler.setHandlerParent(manager)
        handler.makeConnection(stub.xmlstream)
        handler.connectionInitialized()
    return manager, stub


@implementer(IRoomBackend)
class RecordingBackend:
    """
    Records every call; answers from L{answers} (a value, an exception to
    fail with, or L{PENDING}).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.answers: dict[str, Any] = {}
        self.deferreds: dict[str, defer.Deferred[Any]] = {}
        self.onJoin: Any = None

    def _answer(self, name: str) -> defer.Deferred[Any]:
        answer = self.answers.get(name)
        if answer is PENDING:
            d: defer.Deferred[Any] = defer.Deferred()
            self.deferreds[name] = d
            return d
        if isinstance(answer, BaseException):
            return defer.fail(answer)
        return defer.succeed(answer)

    def joinRequested(
        self, roomJID: str, nick: str, realJID: str, password: str | None, history: Any
    ) -> defer.Deferred[Any]:
        self.calls.append(("joinRequested", roomJID, nick, realJID, password, history))
        if self.onJoin is not None:
            self.onJoin(roomJID, nick)
        return self._answer("joinRequested")

    def nickChangeRequested(
        self, roomJID: str, nick: str, newNick: str, realJID: str
    ) -> defer.Deferred[Any]:
        self.calls.append(("nickChangeRequested", roomJID, nick, newNick, realJID))
        return self._answer("nickChangeRequested")

    def messageSent(
        self,
        roomJID: str,
        nick: str,
        realJID: str,
        body: str,
        messageID: str | None,
        chatState: str | None,
    ) -> defer.Deferred[Any]:
        self.calls.append(
            ("messageSent", roomJID, nick, realJID, body, messageID, chatState)
        )
        return self._answer("messageSent")

    def privateMessageSent(
        self,
        roomJID: str,
        nick: str,
        realJID: str,
        toNick: str,
        body: str,
        messageID: str | None,
        chatState: str | None,
    ) -> defer.Deferred[Any]:
        self.calls.append(
            (
                "privateMessageSent",
                roomJID,
                nick,
                realJID,
                toNick,
                body,
                messageID,
                chatState,
            )
        )
        return self._answer("privateMessageSent")

    def chatStateSent(
        self, roomJID: str, nick: str, realJID: str, state: str, toNick: str | None
    ) -> None:
        self.calls.append(("chatStateSent", roomJID, nick, realJID, state, toNick))

    def invitationDeclined(self, roomJID: str, realJID: str, reason: str | None) -> None:
        self.calls.append(("invitationDeclined", roomJID, realJID, reason))

    def invitationSent(
        self, roomJID: str, nick: str, realJID: str, invitee: str, reason: str | None
    ) -> Any:
        self.calls.append(("invitationSent", roomJID, nick, realJID, invitee, reason))
        return self._answer("invitationSent")

    def presenceChanged(
        self,
        roomJID: str,
        nick: str,
        realJID: str,
        show: str | None,
        status: str | None,
    ) -> None:
        self.calls.append(("presenceChanged", roomJID, nick, realJID, show, status))

    def left(self, roomJID: str, nick: str, realJID: str, status: str | None) -> None:
        self.calls.append(("left", roomJID, nick, realJID, status))


def tree(element: domish.Element, ignore: tuple[str, ...] = ("id",)) -> tuple[Any, ...]:
    """
    A canonical form of an element for comparison: namespace (the stream's
    default namespaces are one), sorted attributes without C{ignore},
    stripped text, children in order.
    """
    uri = None if element.uri in _DEFAULT_NAMESPACES else element.uri
    attributes = sorted(
        (key if isinstance(key, str) else "{%s}%s" % key, value)
        for key, value in element.attributes.items()
        if key not in ignore
    )
    text = "".join(str(c) for c in element.children if isinstance(c, str)).strip()
    return (
        element.name,
        uri,
        attributes,
        text,
        [tree(c, ignore) for c in element.elements()],
    )


def xml(text: str) -> domish.Element:
    """
    Parse one stanza.
    """
    return parseXml(text.strip())


DOMAIN = "chat.shakespeare.lit"
ROOM = "coven@chat.shakespeare.lit"
HAG = "hag66@shakespeare.lit/pda"
HAG_LAPTOP = "hag66@shakespeare.lit/laptop"
CRONE = "crone1@shakespeare.lit/desktop"
WIZARD = "wiz@shakespeare.lit/tower"
NOW = datetime(2015, 10, 15, 18, 30, 0, tzinfo=timezone.utc)
T1 = datetime(2002, 10, 13, 23, 58, 37, tzinfo=timezone.utc)


def joinXML(
    sender: str = HAG,
    nick: str = "thirdwitch",
    x: str = "<x xmlns='http://jabber.org/protocol/muc'/>",
    presenceID: str = "n13mt3l",
) -> domish.Element:
    """
    XEP-0045 Example 18 (User Seeks to Enter a Room), from C{sender}.
    """
    return xml(
        f"<presence from='{sender}' id='{presenceID}' to='{ROOM}/{nick}'>{x}</presence>"
    )


class RoomTestCase(SynchronousTestCase):
    """
    A L{MUCService} on a recording manager, hosting the coven room with two
    SIP participants, three history entries and a subject.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW.timestamp())
        self.backend = RecordingBackend()
        ids = iter(range(1, 1000))
        self.service = MUCService(
            DOMAIN, self.backend, self.clock, idFactory=lambda: f"id{next(ids)}"
        )
        self.manager, self.stub = connect(self.service)
        self.room = Room(
            ROOM, "sip:coven@chat.shakespeare.lit", RoomSettings(name="A Dark Cave")
        )
        self.room.join(Participant("firstwitch"))
        self.room.join(
            Participant("secondwitch", realAddress="wiccarocks@shakespeare.lit/laptop")
        )
        for n in range(3):
            self.room.record(
                HistoryEntry(
                    "firstwitch",
                    f"Thrice the brinded cat hath mew'd {n}.",
                    T1 + timedelta(minutes=n),
                    messageID=f"h{n}",
                )
            )
        self.room.setSubject(
            Subject("Fire Burn and Cauldron Bubble!", "secondwitch", T1)
        )
        self.service.createRoom(self.room)
        self.logs: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.logs.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logs.append)

    def receive(self, stanza: domish.Element | str) -> list[domish.Element]:
        """
        Feed a stanza in; return what the service sent in answer.
        """
        before = len(self.manager.output)
        self.stub.send(xml(stanza) if isinstance(stanza, str) else stanza)
        return self.manager.output[before:]

    def join(self, sender: str = HAG, nick: str = "thirdwitch") -> list[domish.Element]:
        """
        Join successfully; return the output.
        """
        return self.receive(joinXML(sender, nick))

    def assertXML(
        self, actual: domish.Element, expected: str, ignore: tuple[str, ...] = ("id",)
    ) -> None:
        """
        Compare canonically.
        """
        self.assertEqual(
            tree(actual, ignore), tree(xml(expected), ignore), actual.toXml()
        )

    def assertError(
        self,
        stanza: domish.Element,
        condition: str,
        errorType: str,
        by: str | None = ROOM,
    ) -> None:
        """
        C{stanza} is an error with this condition and type (by the room).
        """
        self.assertEqual(stanza.getAttribute("type"), "error")
        errorElement = next(stanza.elements(None, "error"))
        self.assertEqual(errorElement.getAttribute("type"), errorType)
        self.assertEqual(errorElement.getAttribute("by"), by)
        self.assertEqual(error.exceptionFromStanza(stanza).condition, condition)


class JoinTests(RoomTestCase):
    """
    Entering a room: XEP-0045 section 7.2 (R-184 to R-189).
    """

    def test_backendInterface(self) -> None:
        """
        The recording backend provides L{IRoomBackend}.
        """
        verifyObject(IRoomBackend, self.backend)

    def test_joinOrder(self) -> None:
        """
        R-184, R-185, R-189 (XEP-0045 7.1 order, Examples 21, 24, 31, 34):
        the occupants' presences, the self-presence with 110 last (keeping
        the join's id), history with XEP-0203 delays from the room, then the
        subject; the backend was asked first with the user's data.
        """
        out = self.join()
        self.assertEqual(
            self.backend.calls, [("joinRequested", ROOM, "thirdwitch", HAG, None, None)]
        )
        self.assertEqual([s.name for s in out], ["presence"] * 3 + ["message"] * 4)
        self.assertXML(
            out[0],
            f"""
            <presence from='{ROOM}/firstwitch' to='{HAG}'>
              <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x>
            </presence>""",
        )
        # semi-anonymous: no jid attribute for secondwitch
        self.assertXML(
            out[1],
            f"""
            <presence from='{ROOM}/secondwitch' to='{HAG}'>
              <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x>
            </presence>""",
        )
        self.assertXML(
            out[2],
            f"""
            <presence from='{ROOM}/thirdwitch' id='n13mt3l' to='{HAG}'>
              <x xmlns='http://jabber.org/protocol/muc#user'>
                <item affiliation='none' role='participant'/>
                <status code='110'/>
              </x>
            </presence>""",
            ignore=(),
        )
        stamps = [
            "2002-10-13T23:58:37Z",
            "2002-10-13T23:59:37Z",
            "2002-10-14T00:00:37Z",
        ]
        for n in range(3):
            self.assertXML(
                out[3 + n],
                f"""
                <message from='{ROOM}/firstwitch' id='h{n}' to='{HAG}' type='groupchat'>
                  <body>Thrice the brinded cat hath mew'd {n}.</body>
                  <delay xmlns='urn:xmpp:delay' from='{ROOM}' stamp='{stamps[n]}'/>
                </message>""",
                ignore=(),
            )
        self.assertXML(
            out[6],
            f"""
            <message from='{ROOM}' to='{HAG}' type='groupchat'>
              <subject>Fire Burn and Cauldron Bubble!</subject>
              <delay xmlns='urn:xmpp:delay' from='{ROOM}' stamp='2002-10-13T23:58:37Z'/>
            </message>""",
        )
        self.assertEqual(self.service.occupantNicks(ROOM), ("thirdwitch",))
        self.assertEqual(
            self.room.get("thirdwitch"), Participant("thirdwitch", realAddress=HAG)
        )

    def test_historyStampsAcrossMidnight(self) -> None:
        """
        The third history entry's stamp is the next day: XEP-0082 UTC.
        """
        out = self.join()
        delay = next(out[5].elements("urn:xmpp:delay", "delay"))
        self.assertEqual(delay["stamp"], "2002-10-14T00:00:37Z")

    def test_othersSeeNewOccupantBeforeSelfPresence(self) -> None:
        """
        XEP-0045 7.2.3 (Example 23): existing XMPP occupants get the new
        occupant's presence, and the joiner's self-presence is still the
        last presence it gets.
        """
        self.join(CRONE, "crone")
        out = self.join()
        presences = [s for s in out if s.name == "presence"]
        self.assertEqual(
            [(p["from"], p["to"]) for p in presences],
            [
                (f"{ROOM}/firstwitch", HAG),
                (f"{ROOM}/secondwitch", HAG),
                (f"{ROOM}/crone", HAG),
                (f"{ROOM}/thirdwitch", CRONE),
                (f"{ROOM}/thirdwitch", HAG),
            ],
        )
        self.assertXML(
            presences[3],
            f"""
            <presence from='{ROOM}/thirdwitch' to='{CRONE}'>
              <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x>
            </presence>""",
        )

    def test_nonAnonymous(self) -> None:
        """
        R-187 (XEP-0045 7.2.4, Example 25): a non-anonymous room shows real
        JIDs to all and warns with 100; a logged room adds 170.
        """
        self.service.createRoom(
            Room(
                "open@" + DOMAIN,
                settings=RoomSettings(anonymity=Anonymity.NON_ANONYMOUS, logged=True),
            )
        )
        self.service.participantJoined(
            "open@" + DOMAIN,
            Participant("secondwitch", realAddress="wiccarocks@shakespeare.lit/laptop"),
        )
        out = self.receive(
            f"<presence from='{HAG}' to='open@{DOMAIN}/thirdwitch'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        )
        self.assertXML(
            out[0],
            f"""
            <presence from='open@{DOMAIN}/secondwitch' to='{HAG}'>
              <x xmlns='http://jabber.org/protocol/muc#user'>
                <item affiliation='none' jid='wiccarocks@shakespeare.lit/laptop' role='participant'/>
              </x>
            </presence>""",
        )
        self.assertXML(
            out[1],
            f"""
            <presence from='open@{DOMAIN}/thirdwitch' to='{HAG}'>
              <x xmlns='http://jabber.org/protocol/muc#user'>
                <item affiliation='none' jid='{HAG}' role='participant'/>
                <status code='100'/><status code='110'/><status code='170'/>
              </x>
            </presence>""",
        )

    def test_createdAndModifiedNick(self) -> None:
        """
        XEP-0045 status 201 (room created) and 210 (nick modified by the
        service, R-014/R-186) come from the backend's L{JoinAccepted}.
        """
        self.backend.answers["joinRequested"] = JoinAccepted(
            nick="thirdwitch2", created=True
        )
        out = self.join()
        selfPresence = out[2]
        self.assertEqual(selfPresence["from"], f"{ROOM}/thirdwitch2")
        codes = [
            s["code"]
            for s in next(selfPresence.elements(NS_USER, "x")).elements(
                NS_USER, "status"
            )
        ]
        self.assertEqual(codes, ["110", "201", "210"])

    def test_emptySubject(self) -> None:
        """
        R-189: with no subject the room still sends an empty C{<subject/>}
        (XEP-0045 7.2.15), and nothing with a body after the presences.
        """
        self.service.createRoom(Room("empty@" + DOMAIN))
        out = self.receive(
            f"<presence from='{HAG}' to='empty@{DOMAIN}/thirdwitch'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        )
        self.assertEqual(len(out), 2)
        self.assertXML(
            out[1],
            f"""
            <message from='empty@{DOMAIN}' to='{HAG}' type='groupchat'><subject/></message>""",
        )

    def test_historyMaxStanzas(self) -> None:
        """
        R-195 (XEP-0045 7.2.15, Example 40): maxstanzas keeps the newest.
        """
        out = self.receive(
            joinXML(
                x="<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='2'/></x>"
            )
        )
        self.assertEqual(
            [s.getAttribute("id") for s in out if s.name == "message"],
            ["h1", "h2", "id1"],
        )
        self.assertEqual(self.backend.calls[0][5], HistoryRequest(maxStanzas=2))

    def test_historyMaxCharsZero(self) -> None:
        """
        XEP-0045 Example 39: maxchars='0' means no history at all.
        """
        out = self.receive(
            joinXML(
                x="<x xmlns='http://jabber.org/protocol/muc'><history maxchars='0'/></x>"
            )
        )
        self.assertEqual([s.name for s in out], ["presence"] * 3 + ["message"])
        self.assertTrue(list(out[-1].elements(None, "subject")))

    def test_historyMaxCharsCountsStanzas(self) -> None:
        """
        maxchars counts the characters of the complete XML stanzas.
        """
        one = len(
            self.service._rooms[ROOM].historyMessage(JID(HAG), self.room.history[2]).toXml()
        )
        out = self.receive(
            joinXML(
                x=f"<x xmlns='http://jabber.org/protocol/muc'><history maxchars='{one + 5}'/></x>"
            )
        )
        self.assertEqual(
            [s.getAttribute("id") for s in out if s.name == "message"], ["h2", "id1"]
        )

    def test_historySecondsAndSince(self) -> None:
        """
        XEP-0045 Examples 41 and 42: seconds and since.
        """
        self.clock.advance((T1 + timedelta(minutes=3) - NOW).total_seconds())
        out = self.receive(
            joinXML(
                x="<x xmlns='http://jabber.org/protocol/muc'><history seconds='150'/></x>"
            )
        )
        self.assertEqual(
            [s.getAttribute("id") for s in out if s.name == "message"],
            ["h1", "h2", "id1"],
        )
        out = self.receive(
            joinXML(
                CRONE,
                "crone",
                x="<x xmlns='http://jabber.org/protocol/muc'><history since='2002-10-13T23:59:00Z'/></x>",
            )
        )
        self.assertEqual(
            [s.getAttribute("id") for s in out if s.name == "message"],
            ["h1", "h2", "id2"],
        )

    def test_parseJoin(self) -> None:
        """
        Password and history attributes are read; bad values ignored.
        """
        has, password, history = parseJoin(
            joinXML(
                x=(
                    "<x xmlns='http://jabber.org/protocol/muc'><password>cauldronburn</password>"
                    "<history maxchars='x' maxstanzas='-1' seconds='180' since='1970-01-01T00:00:00'/></x>"
                )
            )
        )
        self.assertTrue(has)
        self.assertEqual(password, "cauldronburn")
        self.assertEqual(
            history,
            HistoryRequest(
                seconds=180, since=datetime(1970, 1, 1, tzinfo=timezone.utc)
            ),
        )
        self.assertEqual(parseJoin(joinXML(x="")), (False, None, None))

    def test_passwordPassedNotEchoed(self) -> None:
        """
        XEP-0045 7.2.6 (Example 27/28): the password goes to the backend; a
        not-authorized error does not echo it.
        """
        self.backend.answers["joinRequested"] = mucError("not-authorized")
        out = self.receive(
            joinXML(
                x="<x xmlns='http://jabber.org/protocol/muc'><password>wrong</password></x>"
            )
        )
        self.assertEqual(self.backend.calls[0][4], "wrong")
        self.assertXML(
            out[0],
            f"""
            <presence from='{ROOM}/thirdwitch' id='n13mt3l' to='{HAG}' type='error'>
              <x xmlns='http://jabber.org/protocol/muc'/>
              <error by='{ROOM}' code='401' type='auth'>
                <not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
              </error>
            </presence>""",
            ignore=(),
        )

    def test_groupchat10Join(self) -> None:
        """
        XEP-0045 7.2.2: presence without the MUC C{<x/>} also joins.
        """
        out = self.receive(joinXML(x=""))
        self.assertEqual(out[2]["from"], f"{ROOM}/thirdwitch")

    def test_joinCreatesRoom(self) -> None:
        """
        The backend may create the room while answering the join.
        """
        self.backend.onJoin = lambda roomJID, nick: self.service.createRoom(
            Room(roomJID)
        )
        out = self.receive(f"<presence from='{HAG}' to='new@{DOMAIN}/thirdwitch'/>")
        self.assertEqual(out[0]["to"], HAG)
        self.assertIn("110", out[0].toXml())
        self.assertIsNotNone(self.service.getRoom(f"new@{DOMAIN}"))

    def test_pendingThenAbandoned(self) -> None:
        """
        Nothing is sent while the backend works; if the session leaves
        meanwhile, the backend is told once the join completes.
        """
        self.backend.answers["joinRequested"] = PENDING
        self.assertEqual(self.join(), [])
        self.assertEqual(
            self.receive(
                f"<presence from='{HAG}' to='{ROOM}/thirdwitch' type='unavailable'/>"
            ),
            [],
        )
        self.backend.deferreds["joinRequested"].callback(None)
        self.assertEqual(self.manager.output, [])
        self.assertEqual(
            self.backend.calls[-1], ("left", ROOM, "thirdwitch", HAG, None)
        )


class JoinErrorTests(RoomTestCase):
    """
    Entry errors (R-186, R-188; XEP-0045 7.2.1, 7.2.6-7.2.11).
    """

    def test_noNick(self) -> None:
        """
        XEP-0045 Example 20: a join to the bare room JID is jid-malformed.
        """
        out = self.receive(
            f"<presence from='{HAG}' to='{ROOM}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        )
        self.assertError(out[0], "jid-malformed", "modify")
        self.assertEqual(self.backend.calls, [])

    def test_invalidNick(self) -> None:
        """
        A nick that fails RFC 7700 enforcement (only spaces, controls) is
        jid-malformed too, with the reason as text.
        """
        for nick in ("\u2003", "\u1100", "\ufe0f", "\ue000"):
            stanza = joinXML()
            stanza["to"] = f"{ROOM}/{nick}"
            out = self.receive(stanza)
            self.assertError(
                out[0], "jid-malformed", "modify", None if nick == "\ue000" else ROOM
            )
            self.assertEqual(out[0]["from"], f"{ROOM}/{nick}")
        self.assertEqual(self.backend.calls, [])

    def test_conflict(self) -> None:
        """
        XEP-0045 7.2.9 (Example 33): a nick held by a SIP participant, also
        in another case (RFC 7700), is a conflict.  The backend is asked
        first (the focus decides whether a SIP participant's nick is free);
        one that accepts anyway still does not make two FirstWitches.
        """
        out = self.join(nick="FirstWitch")
        self.assertXML(
            out[0],
            f"""
            <presence from='{ROOM}/FirstWitch' to='{HAG}' type='error'>
              <x xmlns='http://jabber.org/protocol/muc'/>
              <error by='{ROOM}' code='409' type='cancel'>
                <conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
              </error>
            </presence>""",
        )
        self.assertEqual(self.backend.calls[0][0], "joinRequested")
        self.assertEqual(self.backend.calls[-1][0], "left")

    def test_conflictWithXMPPOccupant(self) -> None:
        """
        Another XMPP user's nick is taken as well, pending joins included.
        """
        self.backend.answers["joinRequested"] = PENDING
        self.join(CRONE, "crone")
        out = self.join(HAG, "Crone")
        self.assertError(out[0], "conflict", "cancel")

    def test_backendRefusals(self) -> None:
        """
        R-188: the backend's refusal is the error, with XEP-0045's types
        (E.5: INVITE 403 -> forbidden, 404 -> item-not-found, ...).
        """
        cases = [
            ("not-authorized", "auth"),
            ("registration-required", "auth"),
            ("forbidden", "auth"),
            ("conflict", "cancel"),
            ("service-unavailable", "wait"),
            ("item-not-found", "cancel"),
            ("not-acceptable", "cancel"),
            ("not-allowed", "cancel"),
        ]
        for condition, errorType in cases:
            self.backend.answers["joinRequested"] = mucError(condition)
            out = self.join()
            self.assertEqual(len(out), 1)
            self.assertEqual(out[0]["from"], f"{ROOM}/thirdwitch")
            self.assertError(out[0], condition, errorType)
        self.assertEqual(self.service.occupantNicks(ROOM), ())
        refused = [
            e
            for e in self.logs
            if e.get("log_format", "").startswith("Join to {roomJID} as {nick} refused")
        ]
        self.assertEqual(refused[-1]["roomJID"], ROOM)
        self.assertEqual(refused[-1]["nick"], "thirdwitch")
        self.assertEqual(refused[-1]["error"], "not-allowed")

    def test_notImplementedAndBug(self) -> None:
        """
        NotImplementedError -> feature-not-implemented; any other failure is
        logged and answered internal-server-error.
        """
        self.backend.answers["joinRequested"] = NotImplementedError()
        self.assertError(self.join()[0], "feature-not-implemented", "cancel")
        self.backend.answers["joinRequested"] = RuntimeError("bug")
        self.assertError(self.join()[0], "internal-server-error", "cancel")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_noSuchRoom(self) -> None:
        """
        XEP-0045 7.2.11: a room the backend did not create is item-not-found.
        """
        out = self.receive(f"<presence from='{HAG}' to='nope@{DOMAIN}/thirdwitch'/>")
        self.assertError(out[0], "item-not-found", "cancel", f"nope@{DOMAIN}")


class MessageTests(RoomTestCase):
    """
    Groupchat messages (XEP-0045 7.4; R-191, R-212) and private messages
    (7.5; R-192, R-220).
    """

    def setUp(self) -> None:
        super().setUp()
        self.join()
        self.join(CRONE, "crone")
        self.manager.output.clear()

    def test_reflection(self) -> None:
        """
        R-191/R-212 (XEP-0045 Example 47, 48): the message goes to the
        backend, then to every occupant, the sender included, from the
        sender's occupant JID, with the client's id; it enters the history.
        """
        out = self.receive(
            f"<message from='{HAG}' id='lzfed24s' to='{ROOM}' type='groupchat'><body>Harpier cries: 'tis time, 'tis time.</body></message>"
        )
        self.assertEqual(
            self.backend.calls[-1],
            (
                "messageSent",
                ROOM,
                "thirdwitch",
                HAG,
                "Harpier cries: 'tis time, 'tis time.",
                "lzfed24s",
                None,
            ),
        )
        self.assertEqual(sorted(s["to"] for s in out), sorted([HAG, CRONE]))
        for stanza in out:
            self.assertXML(
                stanza,
                f"""
                <message from='{ROOM}/thirdwitch' id='lzfed24s' to='{stanza["to"]}' type='groupchat'>
                  <body>Harpier cries: 'tis time, 'tis time.</body>
                </message>""",
                ignore=(),
            )
        self.assertEqual(self.room.history[-1].messageID, "lzfed24s")
        self.assertEqual(self.room.history[-1].timestamp, NOW)

    def test_reflectionWaitsForBackend(self) -> None:
        """
        R-212: no reflection before the switch accepted the message.
        """
        self.backend.answers["messageSent"] = PENDING
        self.assertEqual(
            self.receive(
                f"<message from='{HAG}' id='a1' to='{ROOM}' type='groupchat'><body>hi</body></message>"
            ),
            [],
        )
        self.backend.deferreds["messageSent"].callback(None)
        self.assertEqual(len(self.manager.output), 2)

    def test_refused(self) -> None:
        """
        R-212: a refused message comes back as an error with the id and the
        body, and is not reflected (E.3: MSRP 403 -> forbidden).
        """
        self.backend.answers["messageSent"] = mucError("forbidden")
        out = self.receive(
            f"<message from='{HAG}' id='a2' to='{ROOM}' type='groupchat'><body>hi</body></message>"
        )
        self.assertEqual(len(out), 1)
        self.assertXML(
            out[0],
            f"""
            <message from='{ROOM}' id='a2' to='{HAG}' type='error'>
              <body>hi</body>
              <error by='{ROOM}' code='403' type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>
            </message>""",
            ignore=(),
        )

    def test_nonOccupant(self) -> None:
        """
        XEP-0045 7.4: a groupchat from a non-occupant is not-acceptable.
        """
        out = self.receive(
            f"<message from='{WIZARD}' id='a3' to='{ROOM}' type='groupchat'><body>hi</body></message>"
        )
        self.assertError(out[0], "not-acceptable", "cancel")

    def test_noSuchRoom(self) -> None:
        """
        A message to a room that is not hosted is item-not-found.
        """
        out = self.receive(
            f"<message from='{HAG}' to='nope@{DOMAIN}' type='groupchat'><body>hi</body></message>"
        )
        self.assertError(out[0], "item-not-found", "cancel", f"nope@{DOMAIN}")

    def test_subjectChangeForbidden(self) -> None:
        """
        R-217: an XMPP user cannot set a SIP room's subject.
        """
        out = self.receive(
            f"<message from='{HAG}' to='{ROOM}' type='groupchat'><subject>New</subject></message>"
        )
        self.assertError(out[0], "forbidden", "auth")

    def test_invitation(self) -> None:
        """
        XEP-0045 7.8.2 (RFC 7702 section 5.7): a mediated invitation from an
        occupant goes to the backend with the invitee and reason; nothing
        goes back on success.
        """
        out = self.receive(
            f"<message from='{HAG}' to='{ROOM}'><x xmlns='{NS_USER}'>"
            "<invite to='hecate@shakespeare.lit'><reason>Hail!</reason></invite></x></message>"
        )
        self.assertEqual(out, [])
        self.assertEqual(
            self.backend.calls[-1][0::4], ("invitationSent", "hecate@shakespeare.lit")
        )
        self.assertEqual(self.backend.calls[-1][5], "Hail!")

    def test_invitationRefused(self) -> None:
        """
        The backend refuses (the focus said 403): the inviter gets the
        error; other normal messages stay feature-not-implemented.
        """
        self.backend.answers["invitationSent"] = error.StanzaError("forbidden")
        out = self.receive(
            f"<message from='{HAG}' to='{ROOM}'><x xmlns='{NS_USER}'><invite to='x@y'/></x></message>"
        )
        self.assertError(out[0], "forbidden", "auth")
        out = self.receive(f"<message from='{HAG}' to='{ROOM}'><body>hi</body></message>")
        self.assertError(out[0], "feature-not-implemented", "cancel")

    def test_chatState(self) -> None:
        """
        A standalone chat state goes to the backend and the other occupants.
        """
        out = self.receive(
            f"<message from='{HAG}' to='{ROOM}' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
        )
        self.assertEqual(
            self.backend.calls[-1],
            ("chatStateSent", ROOM, "thirdwitch", HAG, "composing", None),
        )
        self.assertEqual([s["to"] for s in out], [CRONE])
        self.assertEqual(out[0]["from"], f"{ROOM}/thirdwitch")

    def test_privateMessage(self) -> None:
        """
        R-192 (XEP-0045 7.5, Example 50): a chat message to an occupant JID
        goes to the backend; no reflection.
        """
        out = self.receive(
            f"<message from='{HAG}' id='p1' to='{ROOM}/firstwitch' type='chat'><body>I'll give thee a wind.</body><x xmlns='{NS_USER}'/></message>"
        )
        self.assertEqual(out, [])
        self.assertEqual(
            self.backend.calls[-1],
            (
                "privateMessageSent",
                ROOM,
                "thirdwitch",
                HAG,
                "firstwitch",
                "I'll give thee a wind.",
                "p1",
                None,
            ),
        )

    def test_privateMessageErrors(self) -> None:
        """
        R-192: groupchat to an occupant JID -> bad-request; unknown nick ->
        item-not-found; from a non-occupant -> not-acceptable; R-220: rooms
        without private messages -> feature-not-implemented; backend errors
        come back.
        """
        out = self.receive(
            f"<message from='{HAG}' to='{ROOM}/firstwitch' type='groupchat'><body>x</body></message>"
        )
        self.assertError(out[0], "bad-request", "modify")
        out = self.receive(
            f"<message from='{HAG}' to='{ROOM}/nobody' type='chat'><body>x</body></message>"
        )
        self.assertError(out[0], "item-not-found", "cancel")
        out = self.receive(
            f"<message from='{WIZARD}' to='{ROOM}/firstwitch' type='chat'><body>x</body></message>"
        )
        self.assertError(out[0], "not-acceptable", "cancel")
        self.backend.answers["privateMessageSent"] = mucError("item-not-found")
        out = self.receive(
            f"<message from='{HAG}' id='p2' to='{ROOM}/firstwitch'><body>x</body></message>"
        )
        self.assertError(out[0], "item-not-found", "cancel")
        self.assertEqual(out[0]["id"], "p2")
        self.service._rooms[ROOM].room.settings = RoomSettings(privateMessages=False)
        out = self.receive(
            f"<message from='{HAG}' to='{ROOM}/firstwitch' type='chat'><body>x</body></message>"
        )
        self.assertError(out[0], "feature-not-implemented", "cancel")

    def test_errorsIgnored(self) -> None:
        """
        Message errors from clients are not answered.
        """
        self.assertEqual(
            self.receive(f"<message from='{HAG}' to='{ROOM}' type='error'/>"), []
        )


class PresenceTests(RoomTestCase):
    """
    Nick changes (7.6; R-193), presence updates (7.7), exit (7.14; R-190)
    and multi-session occupants.
    """

    def setUp(self) -> None:
        super().setUp()
        self.join()
        self.join(CRONE, "crone")
        self.manager.output.clear()

    def test_nickChange(self) -> None:
        """
        R-193 (XEP-0045 Examples 56-58): unavailable from the old nick with
        the new nick and 303 (and 110 to the changer), then available from
        the new nick (110 to the changer).
        """
        out = self.receive(f"<presence from='{HAG}' to='{ROOM}/oldhag'/>")
        self.assertEqual(
            self.backend.calls[-1],
            ("nickChangeRequested", ROOM, "thirdwitch", "oldhag", HAG),
        )
        byRecipient = {to: [s for s in out if s["to"] == to] for to in (HAG, CRONE)}
        self.assertXML(
            byRecipient[CRONE][0],
            f"""
            <presence from='{ROOM}/thirdwitch' to='{CRONE}' type='unavailable'>
              <x xmlns='{NS_USER}'><item affiliation='none' nick='oldhag' role='none'/><status code='303'/></x>
            </presence>""",
        )
        self.assertXML(
            byRecipient[CRONE][1],
            f"""
            <presence from='{ROOM}/oldhag' to='{CRONE}'>
              <x xmlns='{NS_USER}'><item affiliation='none' role='participant'/></x>
            </presence>""",
        )
        self.assertXML(
            byRecipient[HAG][0],
            f"""
            <presence from='{ROOM}/thirdwitch' to='{HAG}' type='unavailable'>
              <x xmlns='{NS_USER}'><item affiliation='none' nick='oldhag' role='none'/><status code='110'/><status code='303'/></x>
            </presence>""",
        )
        self.assertXML(
            byRecipient[HAG][1],
            f"""
            <presence from='{ROOM}/oldhag' to='{HAG}'>
              <x xmlns='{NS_USER}'><item affiliation='none' role='participant'/><status code='110'/></x>
            </presence>""",
        )
        self.assertEqual(self.service.occupantNicks(ROOM), ("oldhag", "crone"))
        self.assertIsNone(self.room.get("thirdwitch"))

    def test_nickChangeConflict(self) -> None:
        """
        XEP-0045 Example 59: the new nick is taken -> conflict from the new
        occupant JID; the backend is not asked; the old nick stays.
        """
        out = self.receive(f"<presence from='{HAG}' to='{ROOM}/SecondWitch'/>")
        self.assertXML(
            out[0],
            f"""
            <presence from='{ROOM}/SecondWitch' to='{HAG}' type='error'>
              <x xmlns='http://jabber.org/protocol/muc'/>
              <error by='{ROOM}' code='409' type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>
            </presence>""",
        )
        self.assertEqual(self.service.occupantNicks(ROOM), ("thirdwitch", "crone"))

    def test_nickChangeRefused(self) -> None:
        """
        R-013: MSRP 425 from the switch is a conflict; the old nick stays.
        Nick lockdown is not-acceptable (R-193).
        """
        for condition in ("conflict", "not-acceptable"):
            self.backend.answers["nickChangeRequested"] = mucError(condition)
            out = self.receive(f"<presence from='{HAG}' to='{ROOM}/oldhag'/>")
            self.assertError(out[0], condition, "cancel")
            self.assertEqual(out[0]["from"], f"{ROOM}/oldhag")
        self.assertEqual(self.service.occupantNicks(ROOM), ("thirdwitch", "crone"))

    def test_nickChangeModified(self) -> None:
        """
        A nick changed by the room gets 210 on the new self-presence.
        """
        self.backend.answers["nickChangeRequested"] = "oldhag2"
        out = self.receive(f"<presence from='{HAG}' to='{ROOM}/oldhag'/>")
        mine = [s for s in out if s["to"] == HAG]
        self.assertEqual(mine[1]["from"], f"{ROOM}/oldhag2")
        self.assertIn("<status code='210'/>", mine[1].toXml())

    def test_presenceUpdate(self) -> None:
        """
        XEP-0045 7.7 (Example 60, 61): show/status go to every occupant.
        """
        out = self.receive(
            f"<presence from='{HAG}' to='{ROOM}/thirdwitch'><show>xa</show><status>gone where the goblins go</status></presence>"
        )
        self.assertEqual(sorted(s["to"] for s in out), sorted([HAG, CRONE]))
        crone = [s for s in out if s["to"] == CRONE][0]
        self.assertXML(
            crone,
            f"""
            <presence from='{ROOM}/thirdwitch' to='{CRONE}'>
              <show>xa</show><status>gone where the goblins go</status>
              <x xmlns='{NS_USER}'><item affiliation='none' role='participant'/></x>
            </presence>""",
        )
        self.assertEqual(
            self.backend.calls[-1],
            (
                "presenceChanged",
                ROOM,
                "thirdwitch",
                HAG,
                "xa",
                "gone where the goblins go",
            ),
        )

    def test_leave(self) -> None:
        """
        R-190 (XEP-0045 7.14, Examples 80-82): the leaver gets unavailable
        with role none and 110; the others unavailable with role none and
        the exit status; the backend is told.  Works with and without the
        MUC C{<x/>}.
        """
        for extra in ("<x xmlns='http://jabber.org/protocol/muc'/>", ""):
            out = self.receive(
                f"<presence from='{HAG}' to='{ROOM}/thirdwitch' type='unavailable'><status>gone</status>{extra}</presence>"
            )
            self.assertXML(
                out[0],
                f"""
                <presence from='{ROOM}/thirdwitch' to='{HAG}' type='unavailable'>
                  <status>gone</status>
                  <x xmlns='{NS_USER}'><item affiliation='none' role='none'/><status code='110'/></x>
                </presence>""",
            )
            self.assertXML(
                out[1],
                f"""
                <presence from='{ROOM}/thirdwitch' to='{CRONE}' type='unavailable'>
                  <status>gone</status>
                  <x xmlns='{NS_USER}'><item affiliation='none' role='none'/></x>
                </presence>""",
            )
            self.assertEqual(
                self.backend.calls[-1], ("left", ROOM, "thirdwitch", HAG, "gone")
            )
            self.assertIsNone(self.room.get("thirdwitch"))
            self.join()
            self.manager.output.clear()

    def test_presenceErrorRemoves(self) -> None:
        """
        A presence error from an occupant's server removes the session.
        """
        self.receive(f"<presence from='{HAG}' to='{ROOM}/thirdwitch' type='error'/>")
        self.assertEqual(self.service.occupantNicks(ROOM), ("crone",))

    def test_multiSession(self) -> None:
        """
        XEP-0045 7.2 multi-session nicks: a second session of the same user
        joins with the same nick, gets the full join sequence, and from then
        on every session gets all traffic; leaving with one session keeps
        the occupant.
        """
        out = self.join(HAG_LAPTOP, "thirdwitch")
        self.assertEqual(
            self.backend.calls[-1],
            ("joinRequested", ROOM, "thirdwitch", HAG_LAPTOP, None, None),
        )
        presences = [(s["from"], s["to"]) for s in out if s.name == "presence"]
        self.assertEqual(presences[-1], (f"{ROOM}/thirdwitch", HAG_LAPTOP))
        self.assertNotIn((f"{ROOM}/thirdwitch", HAG_LAPTOP), presences[:-1])
        self.assertIn((f"{ROOM}/crone", HAG_LAPTOP), presences)
        self.manager.output.clear()
        self.service.groupChatReceived(
            ROOM, HistoryEntry("firstwitch", "hail", NOW, messageID="s1")
        )
        self.assertEqual(
            sorted(s["to"] for s in self.manager.output),
            sorted([HAG, HAG_LAPTOP, CRONE]),
        )
        self.manager.output.clear()
        out = self.receive(
            f"<message from='{HAG_LAPTOP}' id='m1' to='{ROOM}' type='groupchat'><body>hi</body></message>"
        )
        self.assertEqual(sorted(s["to"] for s in out), sorted([HAG, HAG_LAPTOP, CRONE]))
        out = self.receive(
            f"<presence from='{HAG}' to='{ROOM}/thirdwitch' type='unavailable'/>"
        )
        self.assertEqual([s["to"] for s in out], [HAG])
        self.assertEqual(self.service.occupantNicks(ROOM), ("thirdwitch", "crone"))
        out = self.join("other@shakespeare.lit/x", "thirdwitch")
        self.assertError(out[0], "conflict", "cancel")


class PushTests(RoomTestCase):
    """
    Events from the SIP room pushed in by the layer above (SPEC C.1.1 step
    12, C.1.3 step 5, C.1.4 step 4, C.1.7 step 5).
    """

    def setUp(self) -> None:
        super().setUp()
        self.join()
        self.manager.output.clear()

    def test_participantJoinedAndLeft(self) -> None:
        """
        A new SIP participant -> available presence; leaving -> unavailable
        with role none; the XMPP user's own entry in the focus roster is
        ignored.
        """
        self.assertTrue(self.service.participantJoined(ROOM, Participant("Hecate")))
        self.assertXML(
            self.manager.output[-1],
            f"""
            <presence from='{ROOM}/Hecate' to='{HAG}'>
              <x xmlns='{NS_USER}'><item affiliation='none' role='participant'/></x>
            </presence>""",
        )
        self.assertFalse(
            self.service.participantJoined(ROOM, Participant("ThirdWitch"))
        )
        self.assertRaises(
            NickConflict, self.service.participantJoined, ROOM, Participant("hecate")
        )
        self.service.participantLeft(ROOM, "Hecate", status="bye")
        self.assertXML(
            self.manager.output[-1],
            f"""
            <presence from='{ROOM}/Hecate' to='{HAG}' type='unavailable'>
              <status>bye</status>
              <x xmlns='{NS_USER}'><item affiliation='none' role='none'/></x>
            </presence>""",
        )
        self.assertRaises(
            UnknownParticipant, self.service.participantLeft, ROOM, "Hecate"
        )
        self.assertRaises(
            KeyError, self.service.participantJoined, "nope@" + DOMAIN, Participant("x")
        )

    def test_participantKicked(self) -> None:
        """
        A removed SIP participant's unavailable presence carries 307.
        """
        self.service.participantLeft(
            ROOM, "firstwitch", reason=RemovalReason.KICKED, reasonText="Avaunt"
        )
        self.assertXML(
            self.manager.output[-1],
            f"""
            <presence from='{ROOM}/firstwitch' to='{HAG}' type='unavailable'>
              <x xmlns='{NS_USER}'><item affiliation='none' role='none'><reason>Avaunt</reason></item><status code='307'/></x>
            </presence>""",
        )

    def test_participantNickChanged(self) -> None:
        """
        A SIP participant's nick change -> the 303 pair, without 110.
        """
        self.service.participantNickChanged(ROOM, "firstwitch", "Hecate")
        first, second = self.manager.output[-2:]
        self.assertXML(
            first,
            f"""
            <presence from='{ROOM}/firstwitch' to='{HAG}' type='unavailable'>
              <x xmlns='{NS_USER}'><item affiliation='none' nick='Hecate' role='none'/><status code='303'/></x>
            </presence>""",
        )
        self.assertEqual(second["from"], f"{ROOM}/Hecate")

    def test_participantUpdatedAndRoster(self) -> None:
        """
        Updates and full rosters become presences.
        """
        self.service.participantUpdated(
            ROOM, Participant("firstwitch", role=Role.MODERATOR)
        )
        self.assertIn("role='moderator'", self.manager.output[-1].toXml())
        self.manager.output.clear()
        events = self.service.rosterReplaced(
            ROOM,
            [Participant("firstwitch", role=Role.MODERATOR), Participant("Hecate")],
        )
        self.assertEqual(len(events), 2)
        self.assertEqual(
            [(s["from"], s.getAttribute("type")) for s in self.manager.output],
            [(f"{ROOM}/secondwitch", "unavailable"), (f"{ROOM}/Hecate", None)],
        )
        self.assertEqual(self.service.occupantNicks(ROOM), ("thirdwitch",))
        self.assertIsNotNone(self.room.get("thirdwitch"))

    def test_groupChatReceived(self) -> None:
        """
        SPEC C.1.3 step 5: a SIP message to the room goes to every session
        from the sender's occupant JID, enters the history; with
        C{delayed} it has a XEP-0203 delay.
        """
        self.service.groupChatReceived(
            ROOM, HistoryEntry("firstwitch", "Round about the cauldron go", NOW)
        )
        self.assertXML(
            self.manager.output[-1],
            f"""
            <message from='{ROOM}/firstwitch' to='{HAG}' type='groupchat'><body>Round about the cauldron go</body></message>""",
        )
        self.assertEqual(self.room.history[-1].messageID, self.manager.output[-1]["id"])
        self.service.groupChatReceived(
            ROOM, HistoryEntry("firstwitch", "late", T1, messageID="x"), delayed=True
        )
        self.assertIn("stamp='2002-10-13T23:58:37Z'", self.manager.output[-1].toXml())

    def test_privateMessageReceived(self) -> None:
        """
        SPEC C.1.4 step 4 (XEP-0045 Example 51): type chat from the sender's
        occupant JID with the muc#user C{<x/>}.
        """
        self.service.privateMessageReceived(
            ROOM, "secondwitch", "ThirdWitch", "I'll give thee a wind.", "pm1"
        )
        self.assertXML(
            self.manager.output[-1],
            f"""
            <message from='{ROOM}/secondwitch' id='pm1' to='{HAG}' type='chat'>
              <body>I'll give thee a wind.</body><x xmlns='{NS_USER}'/>
            </message>""",
            ignore=(),
        )
        self.assertRaises(
            UnknownParticipant,
            self.service.privateMessageReceived,
            ROOM,
            "a",
            "firstwitch",
            "x",
        )

    def test_chatStateReceived(self) -> None:
        """
        R-225: composing from a SIP participant.
        """
        self.service.chatStateReceived(ROOM, "firstwitch", "composing")
        self.assertIn(
            "<composing xmlns='http://jabber.org/protocol/chatstates'/>",
            self.manager.output[-1].toXml(),
        )

    def test_subjectChanged(self) -> None:
        """
        R-019, R-217: a subject message from the room JID.
        """
        self.service.subjectChanged(ROOM, Subject("Double, double toil and trouble"))
        self.assertXML(
            self.manager.output[-1],
            f"""
            <message from='{ROOM}' to='{HAG}' type='groupchat'><subject>Double, double toil and trouble</subject></message>""",
        )

    def test_occupantRemoved(self) -> None:
        """
        R-190, R-218: BYE from the focus etc. -> 110 + 307/333/332 to the
        user, the code to the other XMPP occupants.
        """
        self.join(CRONE, "crone")
        self.manager.output.clear()
        self.service.occupantRemoved(
            ROOM, "thirdwitch", RemovalReason.ERROR, "focus lost"
        )
        self.assertXML(
            self.manager.output[0],
            f"""
            <presence from='{ROOM}/thirdwitch' to='{HAG}' type='unavailable'>
              <x xmlns='{NS_USER}'><item affiliation='none' role='none'><reason>focus lost</reason></item>
              <status code='110'/><status code='333'/></x>
            </presence>""",
        )
        self.assertEqual(self.manager.output[1]["to"], CRONE)
        self.assertIn("<status code='333'/>", self.manager.output[1].toXml())
        self.assertNotIn("110", self.manager.output[1].toXml())
        self.assertEqual(self.service.occupantNicks(ROOM), ("crone",))
        self.assertRaises(
            UnknownParticipant,
            self.service.occupantRemoved,
            ROOM,
            "thirdwitch",
            RemovalReason.KICKED,
        )

    def test_destroyRoom(self) -> None:
        """
        XEP-0045 10.9 (Example 201): each session gets an unavailable
        presence with C{<destroy/>}; the room is gone.
        """
        self.service.destroyRoom(ROOM, "Macbeth doth come.", "heath@" + DOMAIN)
        self.assertXML(
            self.manager.output[-1],
            f"""
            <presence from='{ROOM}/thirdwitch' to='{HAG}' type='unavailable'>
              <x xmlns='{NS_USER}'>
                <item affiliation='none' role='none'/>
                <destroy jid='heath@{DOMAIN}'><reason>Macbeth doth come.</reason></destroy>
                <status code='110'/>
              </x>
            </presence>""",
        )
        self.assertIsNone(self.service.getRoom(ROOM))
        out = self.receive(
            f"<message from='{HAG}' to='{ROOM}' type='groupchat'><body>x</body></message>"
        )
        self.assertError(out[0], "item-not-found", "cancel")

    def test_createRoomChecks(self) -> None:
        """
        Rooms live on the service's domain, once.
        """
        self.assertRaises(ValueError, self.service.createRoom, Room(ROOM))
        self.assertRaises(ValueError, self.service.createRoom, Room("x@elsewhere"))
        self.assertEqual(self.service.rooms, (self.room,))


class IQTests(RoomTestCase):
    """
    IQs the room side answers itself (R-001; XEP-0410 self-ping).
    """

    def setUp(self) -> None:
        super().setUp()
        self.join()
        self.manager.output.clear()

    def test_adminNotImplemented(self) -> None:
        """
        R-001: room administration is feature-not-implemented.
        """
        out = self.receive(
            f"<iq from='{HAG}' id='k1' to='{ROOM}' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='firstwitch' role='none'/></query></iq>"
        )
        self.assertError(out[0], "feature-not-implemented", "cancel")
        self.assertEqual(out[0]["id"], "k1")

    def test_unknownRoomAndService(self) -> None:
        """
        IQs to unknown rooms -> item-not-found; unknown IQs to the service
        -> service-unavailable; results are never answered.
        """
        out = self.receive(
            f"<iq from='{HAG}' id='k2' to='nope@{DOMAIN}' type='get'><query xmlns='jabber:iq:version'/></iq>"
        )
        self.assertError(out[0], "item-not-found", "cancel", f"nope@{DOMAIN}")
        out = self.receive(
            f"<iq from='{HAG}' id='k3' to='{DOMAIN}' type='get'><query xmlns='jabber:iq:version'/></iq>"
        )
        self.assertError(out[0], "service-unavailable", "cancel", None)
        self.assertEqual(
            self.receive(f"<iq from='{HAG}' id='k4' to='{ROOM}' type='result'/>"), []
        )

    def test_ping(self) -> None:
        """
        XEP-0410: a self-ping by an occupant is answered; by a non-occupant
        it is not-acceptable; pings to other occupants cannot reach SIP
        participants.
        """
        ping = "<ping xmlns='urn:xmpp:ping'/>"
        out = self.receive(
            f"<iq from='{HAG}' id='s1' to='{ROOM}/thirdwitch' type='get'>{ping}</iq>"
        )
        self.assertXML(
            out[0],
            f"<iq from='{ROOM}/thirdwitch' id='s1' to='{HAG}' type='result'/>",
            ignore=(),
        )
        out = self.receive(
            f"<iq from='{WIZARD}' id='s2' to='{ROOM}/thirdwitch' type='get'>{ping}</iq>"
        )
        self.assertError(out[0], "not-acceptable", "cancel")
        out = self.receive(
            f"<iq from='{HAG}' id='s3' to='{ROOM}/firstwitch' type='get'>{ping}</iq>"
        )
        self.assertError(out[0], "service-unavailable", "wait")
        out = self.receive(
            f"<iq from='{HAG}' id='s4' to='{ROOM}' type='get'>{ping}</iq>"
        )
        self.assertEqual(out[0]["type"], "result")


class GuardTests(RoomTestCase):
    """
    Nothing escapes an observer.
    """

    def test_bugAnswered(self) -> None:
        """
        A bug while handling a stanza is logged and answered with
        internal-server-error.
        """

        def boom(*args: Any) -> None:
            raise RuntimeError("boom")

        self.service._join = boom  # type: ignore[method-assign]
        out = self.join()
        self.assertError(out[0], "internal-server-error", "cancel", None)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


NS_USER = "http://jabber.org/protocol/muc#user"
