# -*- test-case-name: tests.xmpp.test_disco -*-
"""
Tests for L{stoxgw.xmpp.disco}: XEP-0030 answers of the user domain (a SIP
gateway) and the room domain (a MUC service, XEP-0045 section 6).
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber import error
from twisted.words.xish import domish
from wokkel.iwokkel import IDisco
from zope.interface.verify import verifyObject

from stoxgw.rooms.model import Anonymity, Participant, Room, RoomSettings, Subject
from stoxgw.xmpp.disco import GatewayDisco, RoomDisco, discoHandlers, roomFeatures
from stoxgw.xmpp.room import MUCService
from tests.xmpp.test_room import RecordingBackend, connect, tree, xml

USER_DOMAIN = "sip.shakespeare.lit"
DOMAIN = "chat.shakespeare.lit"
ROOM = "coven@chat.shakespeare.lit"
HAG = "hag66@shakespeare.lit/pda"
INFO = "http://jabber.org/protocol/disco#info"
ITEMS = "http://jabber.org/protocol/disco#items"


class DiscoTestCase(SynchronousTestCase):
    """
    Both links' disco handlers on recording managers; the room link also
    runs the L{MUCService} (its IQ fallback must not answer disco twice).
    """

    def setUp(self) -> None:
        self.service = MUCService(DOMAIN, RecordingBackend(), Clock())
        self.roomDisco = RoomDisco(self.service)
        self.gatewayDisco = GatewayDisco(USER_DOMAIN)
        self.roomManager, self.roomStub = connect(
            self.service, *discoHandlers(self.roomDisco)
        )
        self.userManager, self.userStub = connect(*discoHandlers(self.gatewayDisco))
        room = Room(
            ROOM,
            settings=RoomSettings(
                name="A Dark Cave", description="The place for all good witches!"
            ),
            subject=Subject("Spells"),
        )
        room.join(Participant("firstwitch"))
        room.join(Participant("secondwitch"))
        self.service.createRoom(room)
        self.service.createRoom(
            Room("hidden@" + DOMAIN, settings=RoomSettings(public=False))
        )

    def ask(
        self, to: str, namespace: str = INFO, sender: str = HAG, node: str = ""
    ) -> domish.Element:
        """
        Send a disco query; return the single answer.
        """
        manager, stub = (
            (self.userManager, self.userStub)
            if to.endswith(USER_DOMAIN)
            else (self.roomManager, self.roomStub)
        )
        before = len(manager.output)
        nodeAttribute = f" node='{node}'" if node else ""
        stub.send(
            xml(
                f"<iq from='{sender}' id='d1' to='{to}' type='get'><query xmlns='{namespace}'{nodeAttribute}/></iq>"
            )
        )
        out = manager.output[before:]
        self.assertEqual(len(out), 1, [o.toXml() for o in out])
        return out[0]

    def assertCondition(self, answer: domish.Element, condition: str) -> None:
        self.assertEqual(answer["type"], "error")
        self.assertEqual(error.exceptionFromStanza(answer).condition, condition)

    def features(self, answer: domish.Element) -> list[str]:
        return [f["var"] for f in answer.query.elements(INFO, "feature")]

    def identities(self, answer: domish.Element) -> list[tuple[str, str, str]]:
        return [
            (i["category"], i["type"], i.getAttribute("name"))
            for i in answer.query.elements(INFO, "identity")
        ]


class GatewayDiscoTests(DiscoTestCase):
    """
    The user domain is a gateway of type sip.
    """

    def test_interface(self) -> None:
        """
        Both providers provide L{IDisco}.
        """
        verifyObject(IDisco, self.gatewayDisco)
        verifyObject(IDisco, self.roomDisco)

    def test_info(self) -> None:
        """
        XEP-0030 section 3.1 with the registry's gateway/sip identity.
        """
        answer = self.ask(USER_DOMAIN)
        self.assertEqual(answer["type"], "result")
        self.assertEqual(
            self.identities(answer), [("gateway", "sip", "SIP/MSRP gateway")]
        )
        self.assertEqual(self.features(answer), [INFO, ITEMS])

    def test_items(self) -> None:
        """
        The gateway lists no items.
        """
        answer = self.ask(USER_DOMAIN, ITEMS)
        self.assertEqual(list(answer.query.elements()), [])


class RoomDiscoTests(DiscoTestCase):
    """
    XEP-0045 section 6 on the room domain.
    """

    def test_service(self) -> None:
        """
        XEP-0045 6.1 (Example 2): conference/text with the MUC feature.
        """
        answer = self.ask(DOMAIN)
        self.assertEqual(
            self.identities(answer), [("conference", "text", "SIP chat rooms")]
        )
        self.assertIn("http://jabber.org/protocol/muc", self.features(answer))

    def test_rooms(self) -> None:
        """
        XEP-0045 6.2 (Example 4): the public rooms, with their names.
        """
        answer = self.ask(DOMAIN, ITEMS)
        items = [
            (i["jid"], i.getAttribute("name"))
            for i in answer.query.elements(ITEMS, "item")
        ]
        self.assertEqual(items, [(ROOM, "A Dark Cave")])

    def test_room(self) -> None:
        """
        XEP-0045 6.4 (Example 10): the room's identity, room-type features
        and the muc#roominfo form with subject and occupant count.
        """
        answer = self.ask(ROOM)
        self.assertEqual(
            self.identities(answer), [("conference", "text", "A Dark Cave")]
        )
        self.assertEqual(
            self.features(answer),
            [
                INFO,
                ITEMS,
                "http://jabber.org/protocol/muc",
                "http://jabber.org/protocol/muc#stable_id",
                "http://jabber.org/protocol/muc#self-ping-optimization",
                "muc_public",
                "muc_open",
                "muc_unmoderated",
                "muc_semianonymous",
                "muc_unsecured",
                "muc_temporary",
            ],
        )
        form = next(answer.query.elements("jabber:x:data", "x"))
        values = {
            f["var"]: [str(v) for v in f.elements("jabber:x:data", "value")]
            for f in form.elements("jabber:x:data", "field")
        }
        self.assertEqual(
            values["FORM_TYPE"], ["http://jabber.org/protocol/muc#roominfo"]
        )
        self.assertEqual(
            values["muc#roominfo_description"], ["The place for all good witches!"]
        )
        self.assertEqual(values["muc#roominfo_subject"], ["Spells"])
        self.assertEqual(values["muc#roominfo_occupants"], ["2"])

    def test_roomFeatureVariants(self) -> None:
        """
        Each setting picks its XEP-0045 section 15.2 feature.
        """
        room = Room(
            "x@" + DOMAIN,
            settings=RoomSettings(
                anonymity=Anonymity.NON_ANONYMOUS,
                public=False,
                persistent=True,
                membersOnly=True,
                moderated=True,
                passwordProtected=True,
            ),
        )
        self.assertEqual(
            roomFeatures(room)[3:],
            [
                "muc_hidden",
                "muc_membersonly",
                "muc_moderated",
                "muc_nonanonymous",
                "muc_passwordprotected",
                "muc_persistent",
            ],
        )

    def test_noSuchRoom(self) -> None:
        """
        A room that is not hosted: item-not-found, for info and items.
        """
        self.assertCondition(self.ask("nope@" + DOMAIN), "item-not-found")
        self.assertCondition(self.ask("nope@" + DOMAIN, ITEMS), "item-not-found")

    def test_roomItems(self) -> None:
        """
        XEP-0045 6.5: the room lists no occupants.
        """
        answer = self.ask(ROOM, ITEMS)
        self.assertEqual(answer["type"], "result")
        self.assertEqual(list(answer.query.elements()), [])

    def test_occupantJID(self) -> None:
        """
        XEP-0045 6.6: a non-occupant asking an occupant JID gets
        bad-request; an occupant gets service-unavailable (the request
        cannot be passed on to a SIP participant).
        """
        self.assertCondition(self.ask(ROOM + "/firstwitch"), "bad-request")
        self.assertCondition(self.ask(ROOM + "/firstwitch", ITEMS), "bad-request")
        self.roomStub.send(xml(f"<presence from='{HAG}' to='{ROOM}/thirdwitch'/>"))
        self.assertCondition(self.ask(ROOM + "/firstwitch"), "service-unavailable")

    def test_nodes(self) -> None:
        """
        Unknown nodes are item-not-found (wokkel's handler).
        """
        self.assertCondition(self.ask(DOMAIN, node="x"), "item-not-found")

    def test_canonical(self) -> None:
        """
        The service answer, compared canonically with XEP-0045 Example 2
        (adapted: our name and feature set).
        """
        answer = self.ask(DOMAIN)
        expected = xml(f"""<iq from='{DOMAIN}' id='d1' to='{HAG}' type='result'>
              <query xmlns='{INFO}'>
                <identity category='conference' name='SIP chat rooms' type='text'/>
                <feature var='{INFO}'/>
                <feature var='{ITEMS}'/>
                <feature var='http://jabber.org/protocol/muc'/>
                <feature var='urn:xmpp:ping'/>
              </query>
            </iq>""")
        self.assertEqual(tree(answer, ()), tree(expected, ()))
