# -*- test-case-name: tests.interop.test_siptoxmpp_features -*-
"""
Interop, RFC 7702 section 6 ("Gateway B", SPEC C.2) beyond entering,
talking and leaving: invitations, chat states, nick conflicts, refused
private messages and the loss of the XMPP link, each on a real Prosody and
a real ejabberd.

The set-up is the one of L{tests.interop.test_siptoxmpp_servers}
(imported, not copied): the real gateway built by
L{stoxgw.service.makeService} from a configuration file on the running
reactor, the SIP user "Romeo" (the project's own UA, MSRP endpoint and
L{ChatInitiator}; L{GatewayHarness.sipRequests} keeps the SIP requests it
receives), and slixmpp users in threads.  Here the slixmpp users are
L{StanzaWatcher}s, which also keep every message stanza whole (errors,
chat states and invitations are checked element by element).

Two scenarios stop the XMPP server and start it again on the same ports
and data directory (L{Prosody.stop}/L{Prosody.start},
L{Ejabberd.stop}/L{Ejabberd.start}): the gateway's component link drops
and comes back (reconnecting with backoff, C{reconnect_max_delay = 2}),
while the SIP side stays up.  What each server keeps across its restart
differs, and the tests say which (L{SIPToXMPPFeaturesMixin.keepsOccupants}).

For invitations to the SIP user (R-222) the gateway routes Romeo's
domain C{example.org} to his UA (C{[sip] static_routes}).

Every wait is bounded; nothing sleeps in place of an assertion.  A
negative ("nothing arrived") is proven by ordering: a later marker message
on the same path arrives and nothing came before it.
"""

from __future__ import annotations

import copy
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from stoxgw.chat.session import ChatSession, EndCause
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.formats.iscomposing import (
    ISCOMPOSING_CONTENT_TYPE,
    ComposingState,
    IsComposing,
)
from stoxgw.msrp.session import MSRPSendError
from stoxgw.sip.refer import (
    SIPFRAG_CONTENT_TYPE,
    IncomingRefer,
    IReferHandler,
    ReferAgent,
    parseSipfrag,
)
from stoxgw.sip.subscription import SIPEvents
from stoxgw.sip.uri import SIPURI, NameAddr
from tests.interop.ejabberd import Ejabberd
from tests.interop.peers import Prosody
from tests.interop.test_occupant_servers import bounded, failureOf, until
from tests.interop.test_siptoxmpp_prosody import SIPUser
from tests.interop.test_siptoxmpp_servers import (
    ROMEO,
    USER_DOMAIN,
    GatewayHarness,
    RoomWatcher,
)

T = TypeVar("T")

#: XEP-0085.
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
#: XEP-0045 C{muc#user}.
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
#: RFC 6120 stanza error conditions.
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
#: The client namespace of the stanzas slixmpp hands over.
NS_CLIENT = "jabber:client"


@dataclass(frozen=True)
class Stanza:
    """
    A message stanza a slixmpp user received.

    @ivar type: Its C{type} (C{normal} when absent).
    @ivar sender: Its C{from}.
    @ivar id: Its C{id}, or C{""}.
    @ivar element: A copy of the whole element.
    """

    type: str
    sender: str
    id: str
    element: ET.Element

    @property
    def body(self) -> str | None:
        """
        The text of its C{<body/>}, or L{None}.
        """
        body = self.element.find(f"{{{NS_CLIENT}}}body")
        return None if body is None else (body.text or "")

    @property
    def chatStates(self) -> list[str]:
        """
        The XEP-0085 chat state elements it carries, by name.
        """
        return [
            child.tag.split("}", 1)[1]
            for child in self.element
            if child.tag.startswith(f"{{{NS_CHATSTATES}}}")
        ]


def pollUntil(
    fetch: Callable[[], defer.Deferred[T]],
    accept: Callable[[T], bool],
    timeout: float,
    what: str,
) -> defer.Deferred[T]:
    """
    Call C{fetch} (a query over the network) every 100 ms, one at a time,
    until C{accept} takes its result.

    @return: fires with that result; fails after C{timeout} seconds.
    """

    @defer.inlineCallbacks
    def poll() -> Generator[defer.Deferred[Any], Any, T]:
        deadline = reactor.seconds() + timeout  # type: ignore[attr-defined]
        while True:
            value = yield fetch()
            if accept(value):
                return value  # type: ignore[no-any-return]
            if reactor.seconds() > deadline:  # type: ignore[attr-defined]
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}: {value!r}"
                )
            yield deferLater(reactor, 0.1, lambda: None)  # type: ignore[arg-type]

    return poll()


@implementer(IReferHandler)
class ReferTaker:
    """
    The SIP user's REFER handler (RFC 3515): accepts every REFER (202)
    and keeps it.

    @ivar refers: The REFERs received, in order.
    """

    def __init__(self) -> None:
        self.refers: list[IncomingRefer] = []

    def referReceived(self, refer: IncomingRefer) -> None:
        """
        Keep C{refer} and accept it.
        """
        self.refers.append(refer)
        refer.accept()


class StanzaWatcher(RoomWatcher):
    """
    A L{RoomWatcher} that also keeps every message stanza it receives
    (L{stanzas}); L{stop} may be called twice (a test ends a client before
    its cleanup does).
    """

    def __init__(self, jid: str, password: str, port: int) -> None:
        super().__init__(jid, password, port)
        self.stanzas: list[Stanza] = []
        self._stanzaLock = threading.Lock()
        self._stopped = False

    async def _connect(self) -> None:
        await super()._connect()
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath

        self.client.register_handler(
            Callback(
                "stoxgw: every message",
                MatchXPath(f"{{{NS_CLIENT}}}message"),
                self._onStanza,
            )
        )

    def _onStanza(self, message: Any) -> None:
        stanza = Stanza(
            message["type"] or "normal",
            str(message["from"]),
            message["id"] or "",
            copy.deepcopy(message.xml),
        )
        with self._stanzaLock:
            self.stanzas.append(stanza)

    def seenStanzas(self) -> list[Stanza]:
        """
        @return: the message stanzas received so far, in order.
        """
        with self._stanzaLock:
            return list(self.stanzas)

    def roster(self, room: str) -> list[str]:
        """
        The nicks of C{room} as this user's presences say now: each
        available presence adds its nick, each unavailable one removes it
        (XEP-0045 7.2.3, 7.6, 7.14).
        """
        nicks: list[str] = []
        for kind, sender, _, _ in self.seenDetails():
            bare, _, nick = sender.partition("/")
            if bare != room or not nick:
                continue
            if kind == "unavailable":
                if nick in nicks:
                    nicks.remove(nick)
            elif kind == "available" and nick not in nicks:
                nicks.append(nick)
        return nicks

    def sendRaw(self, xml: str) -> defer.Deferred[None]:
        """
        Send a stanza as it is written.
        """

        async def send() -> None:
            self.client.send_raw(xml)

        return self.run(send())

    def roomOccupantCount(self, room: str) -> defer.Deferred[int | None]:
        """
        Ask C{room} how many occupants it holds, from outside (the
        C{muc#roominfo_occupants} of its disco#info, XEP-0045 6.4): unlike
        a join, this sends the occupants nothing.

        @return: fires with the count, or L{None} when the room does not
            exist (or gives no count).
        """
        from slixmpp.exceptions import IqError

        async def query() -> int | None:
            try:
                info = await self.client.plugin["xep_0030"].get_info(
                    jid=room, timeout=10
                )
            except IqError:
                return None
            value = info.xml.find(
                ".//{jabber:x:data}field[@var='muc#roominfo_occupants']"
                "/{jabber:x:data}value"
            )
            return None if value is None or not value.text else int(value.text)

        return self.run(query())

    def configureRoom(
        self, room: str, values: Mapping[str, str]
    ) -> defer.Deferred[None]:
        """
        Submit a room configuration form with C{values} (XEP-0045 10.2;
        needs the owner).
        """

        async def configure() -> None:
            form = self.client.plugin["xep_0004"].make_form(ftype="submit")
            form.add_field(
                var="FORM_TYPE",
                ftype="hidden",
                value="http://jabber.org/protocol/muc#roomconfig",
            )
            for var, value in values.items():
                form.add_field(var=var, value=value)
            await self.client.plugin["xep_0045"].set_room_config(room, form, timeout=10)

        return self.run(configure())

    def stop(self) -> None:
        """
        Disconnect, once.
        """
        if self._stopped:
            return
        self._stopped = True
        super().stop()


class SIPToXMPPFeaturesMixin(GatewayHarness):
    """
    The scenarios, for one XMPP server (see the subclasses).

    @ivar relaysStandaloneChatStates: Whether the server's MUC passes a
        groupchat message that carries a chat state and no body on to the
        occupants (XEP-0085 section 5.5 lets a MUC service drop them).
    @ivar keepsOccupants: Whether the server still has an occupant of a
        room after its own restart (so a gateway that lost its link meets
        its occupant again, or must remove it).
    @ivar invitesFromOccupant: Whether the room names the inviter of a
        mediated invitation (XEP-0045 7.8.2 C{<invite from=.../>}) by its
        occupant JID rather than its real JID.
    @ivar participantsMayInvite: Whether a new room lets a participant
        (not a moderator) send a mediated invitation; if not, the owner
        allows it (C{muc#roomconfig_allowinvites}) before the REFER.
    """

    watcherClass = StanzaWatcher
    #: The link-loss scenarios wait up to 30 s for the link, well inside
    #: the grace period (SIP sessions end with BYE after it).
    gatewayOptions = {"link_loss_grace": "60"}
    relaysStandaloneChatStates: bool
    keepsOccupants: bool
    invitesFromOccupant: bool
    participantsMayInvite: bool

    # -- helpers -------------------------------------------------------------

    @property
    def link(self) -> Any:
        """
        The gateway's component link (the user domain).
        """
        [link] = self.gateway.getServiceNamed("xmpp").links
        return link

    @defer.inlineCallbacks
    def romeoInRoom(
        self, carol: StanzaWatcher, **enter: Any
    ) -> Generator[Any, Any, tuple[SIPUser, ChatSession]]:
        """
        Romeo enters (L{enter} with C{enter}) and carol sees C{room/Romeo}.
        """
        romeo = SIPUser()
        session = yield self.enter(romeo, **enter)
        yield until(
            lambda: ("available", f"{self.room}/Romeo") in carol.seen(),
            10,
            "carol to see Romeo enter",
        )
        return romeo, session

    def composing(self, state: ComposingState) -> bytes:
        """
        Romeo's isComposing indication (RFC 3994 section 3.4) in CPIM to
        the room (R-225).
        """
        return CPIMMessage.build(
            contentType=ISCOMPOSING_CONTENT_TYPE,
            body=IsComposing(state, contentType="text/plain", refresh=60).toBytes(),
            fromAddress=CPIMAddress(ROMEO, "Romeo"),
            toAddresses=(CPIMAddress(self.roomURI),),
        ).toBytes()

    def stanzasUntil(
        self, watcher: StanzaWatcher, sender: str, body: str
    ) -> tuple[list[Stanza], Stanza]:
        """
        The stanzas C{watcher} got from C{sender} before the first one
        with C{body}, and that one (it must be there).
        """
        before: list[Stanza] = []
        for stanza in watcher.seenStanzas():
            if stanza.sender != sender:
                continue
            if stanza.body == body:
                return before, stanza
            before.append(stanza)
        raise AssertionError(f"no message {body!r} from {sender}")

    def hasBody(self, watcher: StanzaWatcher, sender: str, body: str) -> bool:
        """
        Whether C{watcher} got a message with C{body} from C{sender}.
        """
        return any(s.sender == sender and s.body == body for s in watcher.seenStanzas())

    def assertNoBye(self, romeo: SIPUser) -> None:
        """
        Romeo's chat is still up: no BYE reached him, nothing ended it.
        """
        self.assertEqual(self.sipRequests.received("BYE"), [])  # type: ignore[attr-defined]
        self.assertEqual(romeo.endings, [])  # type: ignore[attr-defined]

    @defer.inlineCallbacks
    def stopServer(self) -> Generator[Any, Any, Any]:
        """
        Stop the XMPP server (exactly its process, in a thread: the reactor
        and with it the gateway keep running) and wait until the gateway
        lost its link and every participant knows it.

        @return: the participant (there is one).
        """
        [participant] = self.participants.values()
        yield deferToThread(self.server.stop)
        yield until(
            lambda: not self.link.up and participant.linkDown,
            15,
            "the gateway to notice the lost link",
        )
        return participant

    # -- RFC 7702 section 6.5: invitation SIP -> XMPP ----------------------

    @defer.inlineCallbacks
    def test_inviteFromSIP(self) -> Generator[Any, Any, None]:
        """
        F55-F58, R-042, R-043, R-182, R-198 (SPEC C.2.5): Romeo REFERs the
        room in his INVITE dialog with C{Refer-To: <sip:dave@xmpp.test>}:
        the REFER gets 200, Romeo gets exactly one NOTIFY (C{Event: refer},
        C{Subscription-State: terminated}, C{message/sipfrag} C{SIP/2.0
        100 Trying}); dave, not in the room, gets the room's mediated
        invitation (XEP-0045 7.8.2) from the room JID, naming Romeo (his
        real JID or his occupant JID, L{invitesFromOccupant}) as inviter.
        Where a new room lets only moderators invite
        (L{participantsMayInvite}), carol, its owner, allows participants
        first.
        """
        self.server.register("dave", "davepass")
        carol = yield self.xmppUser("carol")
        dave = yield self.xmppUser(None, user="dave")
        romeo, session = yield self.romeoInRoom(carol)
        [participant] = self.participants.values()
        if not self.participantsMayInvite:
            yield carol.configureRoom(self.room, {"muc#roomconfig_allowinvites": "1"})

        events = SIPEvents(self.userAgent)
        self.addCleanup(events.close)
        agent = ReferAgent(events)
        invitee = NameAddr(SIPURI.fromString(f"sip:dave@{self.server.domain}"))
        outgoing = yield bounded(agent.refer(session.dialog, invitee), 10)
        assert outgoing.response is not None
        self.assertEqual(outgoing.response.status, 200)
        yield bounded(outgoing.finished, 10)
        self.assertEqual(outgoing.statuses, [(100, "Trying")])

        [notify] = self.sipRequests.received("NOTIFY")
        self.assertEqual(notify.callID, session.dialog.callID)
        event = notify.header("Event") or ""
        self.assertEqual(event.split(";")[0].strip().lower(), "refer", event)
        state = notify.header("Subscription-State") or ""
        self.assertEqual(state.split(";")[0].strip().lower(), "terminated", state)
        self.assertEqual(
            (notify.header("Content-Type") or "").replace(" ", "").lower(),
            SIPFRAG_CONTENT_TYPE.replace(" ", "").lower(),
        )
        self.assertEqual(parseSipfrag(notify.body), (100, "Trying"))

        invitations = yield until(
            lambda: [
                s
                for s in dave.seenStanzas()
                if s.element.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}invite")
                is not None
            ],
            10,
            "dave to get the invitation",
        )
        [invitation] = invitations
        self.assertEqual(invitation.sender, self.room)
        invite = invitation.element.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}invite")
        assert invite is not None
        inviter = invite.get("from", "")
        self.assertEqual(
            inviter,
            f"{self.room}/Romeo" if self.invitesFromOccupant else participant.real,
        )
        self.assertNoBye(romeo)

    # -- invitation XMPP -> SIP ------------------------------------

    def gatewaySIPOptions(self) -> Mapping[str, str]:
        """
        The gateway reaches Romeo's domain, C{example.org}, at the SIP
        user's UA (C{[sip] static_routes}), so that requests to his
        address of record (an invitation's REFER) arrive there.
        """
        return {"static_routes": f"example.org=127.0.0.1:{self.userPort}/tcp"}

    @defer.inlineCallbacks
    def test_inviteToSIP(self) -> Generator[Any, Any, None]:
        """
        R-222 (SPEC F.2, RFC 4579 sections 5.6 and 5.7, RFC 3515, RFC 3892,
        RFC 4488): carol sends the room a mediated invitation (XEP-0045
        7.8.2) for Romeo's JID on the gateway's user domain (RFC 7247
        mapping of C{sip:romeo@example.org}), Romeo not in the room; the
        room hands it to the gateway, which REFERs Romeo's address of
        record out of dialog: C{Refer-To} the room URI, C{From} the room
        URI, C{Referred-By} carol (her address, or her in-room identity
        C{<sip:room@<muc domain>;gr=carol>}, R-207, when the room names the
        inviter by occupant JID, L{invitesFromOccupant}), C{Refer-Sub:
        false}, and no MESSAGE.  Romeo's UA accepts (202) and INVITEs the
        room it was referred to; carol sees him enter.
        """
        carol = yield self.xmppUser("carol")
        events = SIPEvents(self.userAgent)
        self.addCleanup(events.close)
        taker = ReferTaker()
        ReferAgent(events, taker)
        realJID = f"romeo\\40example.org@{USER_DOMAIN}"
        yield carol.sendRaw(
            f"<message to='{self.room}' id='invite-1'><x xmlns='{NS_MUC_USER}'>"
            f"<invite to='{realJID}'><reason>Join us</reason></invite></x></message>"
        )
        [refer] = yield until(lambda: taker.refers, 10, "Romeo's UA to get a REFER")
        request = refer.request
        self.assertEqual(str(request.uri), ROMEO)
        self.assertEqual(request.toAddress.uri, SIPURI.fromString(ROMEO))
        self.assertEqual(str(refer.referTo.uri), self.roomURI)
        self.assertEqual(refer.referTo.method, "INVITE")
        self.assertEqual(str(request.fromAddress.uri), self.roomURI)
        assert refer.referredBy is not None
        self.assertEqual(
            str(refer.referredBy.uri),
            (
                f"{self.roomURI};gr=carol"
                if self.invitesFromOccupant
                else f"sip:carol@{self.server.domain}"
            ),
        )
        self.assertEqual((request.header("Refer-Sub") or "").lower(), "false")
        self.assertFalse(refer.referSub)
        self.assertEqual(self.sipRequests.received("MESSAGE"), [])

        romeo, session = yield self.romeoInRoom(carol)
        self.assertEqual([p.nick for p in self.participants.values()], ["Romeo"])

    # -- chat states both ways ---------------------------------------

    @defer.inlineCallbacks
    def test_chatStates(self) -> Generator[Any, Any, None]:
        """
        R-120, R-225, SPEC E.6 (RFC 3994, XEP-0085): Romeo offers
        C{a=accept-wrapped-types:text/plain application/im-iscomposing+xml}.
        His isComposing C{active} (CPIM To the room) is answered 200 and
        becomes a standalone groupchat C{<composing/>} from C{room/Romeo},
        which carol gets if the server's MUC relays such messages
        (L{relaysStandaloneChatStates}); his next message carries
        C{<active/>} (XEP-0085 5.1).  carol's standalone C{<composing/>}
        reaches Romeo (if relayed) as CPIM C{To} the room, C{From
        <sip:room@<muc domain>;gr=carol>} wrapping isComposing with
        C{<state>active</state>}; in both directions a later text message
        on the same path shows what came before it.
        """
        carol = yield self.xmppUser("carol")
        romeo, session = yield self.romeoInRoom(
            carol, acceptWrappedTypes=("text/plain", ISCOMPOSING_CONTENT_TYPE)
        )
        [invite] = self.sipRequests.sent[:1]
        self.assertEqual(invite.method, "INVITE")
        offer = invite.body.decode("utf-8").splitlines()
        self.assertIn(
            f"a=accept-wrapped-types:text/plain {ISCOMPOSING_CONTENT_TYPE}", offer
        )

        # SIP -> XMPP.
        occupant = f"{self.room}/Romeo"
        yield bounded(
            session.sendMessage("message/cpim", self.composing(ComposingState.ACTIVE))
        )
        yield bounded(session.sendMessage("message/cpim", self.cpim("Typed it")))
        yield until(
            lambda: self.hasBody(carol, occupant, "Typed it"),
            10,
            "carol to get Romeo's message",
        )
        before, message = self.stanzasUntil(carol, occupant, "Typed it")
        self.assertEqual(
            [(s.type, s.chatStates, s.body) for s in before],
            (
                [("groupchat", ["composing"], None)]
                if self.relaysStandaloneChatStates
                else []
            ),
        )
        self.assertEqual((message.type, message.chatStates), ("groupchat", ["active"]))

        # XMPP -> SIP.
        yield carol.sendRaw(
            f"<message to='{self.room}' type='groupchat' id='state-1'>"
            f"<composing xmlns='{NS_CHATSTATES}'/></message>"
        )
        yield carol.send(self.room, "Typed too", "groupchat")
        yield until(
            lambda: any(b"Typed too" in m.body for m in romeo.messages),
            10,
            "Romeo to get carol's message",
        )
        received = self.received(romeo)
        self.assertEqual(received[-1].body, b"Typed too")
        states = received[:-1]
        self.assertEqual(
            len(states), 1 if self.relaysStandaloneChatStates else 0, received
        )
        for state in states:
            self.assertEqual(state.contentType.mimeType, ISCOMPOSING_CONTENT_TYPE)
            self.assertEqual(IsComposing.parse(state.body).state, ComposingState.ACTIVE)
            self.assertIn(b"<state>active</state>", state.body)
            self.assertEqual([a.uri for a in state.toAddresses], [self.roomURI])
            assert state.fromAddress is not None
            self.assertEqual(state.fromAddress.uri, f"{self.roomURI};gr=carol")

    # -- RFC 7702 section 7: a taken nick ------------------------------------

    @defer.inlineCallbacks
    def test_nickConflictOnJoin(self) -> Generator[Any, Any, None]:
        """
        RFC 7702 section 7, R-033, R-047, R-209, R-210: carol already holds
        the nick C{Romeo}; Romeo's INVITE (display name Romeo) still gets
        200, his occupant joined as C{Romeo_2}, which carol sees; then
        his NICKNAME C{"Montague"} gets 200 and carol sees C{Romeo_2}
        become C{Montague} (303).
        """
        carol = yield self.xmppUser("Romeo")
        romeo = SIPUser()
        session = yield self.enter(romeo)
        assert session.dialog is not None and session.dialog.inviteResponse is not None
        self.assertEqual(session.dialog.inviteResponse.status, 200)
        yield until(
            lambda: ("available", f"{self.room}/Romeo_2") in carol.seen(),
            10,
            "carol to see Romeo_2 enter",
        )
        self.assertEqual([p.nick for p in self.participants.values()], ["Romeo_2"])

        code = yield bounded(session.sendNickname("Montague"))
        self.assertEqual(code, 200)
        yield until(
            lambda: ("available", f"{self.room}/Montague") in carol.seen(),
            10,
            "carol to see Montague",
        )
        changes = [
            (codes, nick)
            for kind, sender, codes, nick in carol.seenDetails()
            if kind == "unavailable" and sender == f"{self.room}/Romeo_2"
        ]
        self.assertTrue(changes, carol.seenDetails())
        self.assertIn(303, changes[0][0])
        self.assertEqual(changes[0][1], "Montague")
        self.assertEqual(sorted(carol.roster(self.room)), ["Montague", "Romeo"])
        self.assertNoBye(romeo)

    # -- no private-messages token -------------------------------------

    @defer.inlineCallbacks
    def test_privateMessageRefused(self) -> Generator[Any, Any, None]:
        """
        R-221, R-059 (RFC 7701 section 6.2, SPEC C.2.3 step 4): Romeo's
        offer has C{a=chatroom:nickname} without C{private-messages}; a
        private message carol sends to C{room/Romeo} is not delivered:
        carol gets a private notice from C{room/Romeo} saying so (not an
        error stanza: both servers remove an occupant that sends one
        through the room), Romeo stays in the room and gets nothing (a
        later groupchat message is the first thing he gets).
        """
        carol = yield self.xmppUser("carol")
        romeo, session = yield self.romeoInRoom(carol, chatroom=("nickname",))
        occupant = f"{self.room}/Romeo"
        yield carol.sendRaw(
            f"<message to='{occupant}' type='chat' id='pm-1'><body>psst</body>"
            f"<x xmlns='{NS_MUC_USER}'/></message>"
        )
        yield until(
            lambda: romeo.endings
            or [s for s in carol.seenStanzas() if s.sender == occupant],
            10,
            "carol to get the notice",
        )
        [notice] = [s for s in carol.seenStanzas() if s.sender == occupant]
        self.assertEqual(notice.type, "chat")
        self.assertIn("Not delivered", notice.body or "")
        self.assertEqual([s for s in carol.seenStanzas() if s.type == "error"], [])

        yield carol.send(self.room, "Anyone?", "groupchat")
        yield until(lambda: romeo.messages, 10, "Romeo to get carol's groupchat")
        self.assertEqual([m.body for m in self.received(romeo)], [b"Anyone?"])
        self.assertEqual(
            romeo.endings,
            [],
            "the room removed Romeo after the notice: "
            f"{[e for e in carol.seenDetails() if e[1] == occupant]}",
        )

    # -- link loss ---------------------------------------------------------------

    @defer.inlineCallbacks
    def test_linkLossKeepsUser(self) -> Generator[Any, Any, None]:
        """
        The XMPP server stops (the gateway's component link drops) and
        starts again on the same ports and data (docs/section6.md "When
        the XMPP link is lost"): meanwhile Romeo's SEND and NICKNAME get
        MSRP 408 at once (not 200, not the local 10 s timeout) and no BYE
        reaches him; when the link is back the gateway rejoins him as
        C{Romeo}; carol, back in the room, sees exactly the occupants
        C{carol} and C{Romeo} (no ghost, no C{Romeo_2}); a message from
        Romeo reaches carol and one from carol reaches Romeo.
        """
        carol = yield self.xmppUser("carol")
        romeo, session = yield self.romeoInRoom(carol)
        participant = yield self.stopServer()

        started = time.monotonic()
        [failure] = yield failureOf(
            session.sendMessage("message/cpim", self.cpim("Anyone?")), 10
        )
        failure.trap(MSRPSendError)
        self.assertEqual(failure.value.code, 408)
        [failure] = yield failureOf(session.sendNickname("Montague"), 10)
        failure.trap(MSRPSendError)
        self.assertEqual(failure.value.code, 408)
        self.assertLess(time.monotonic() - started, 5, "the 408s must be the gateway's")
        self.assertNoBye(romeo)

        carol.stop()
        yield deferToThread(self.server.start)
        yield until(lambda: self.link.up, 30, "the gateway's link to come back")
        yield until(lambda: not participant.linkDown, 30, "the gateway to rejoin Romeo")
        self.assertEqual(list(self.participants.values()), [participant])
        self.assertEqual(participant.nick, "Romeo")

        carol = yield self.xmppUser("carol")
        yield until(
            lambda: "Romeo" in carol.roster(self.room),
            10,
            "carol to see Romeo in the room",
        )
        self.assertEqual(sorted(carol.roster(self.room)), ["Romeo", "carol"])

        yield bounded(session.sendMessage("message/cpim", self.cpim("Back again")))
        yield until(
            lambda: self.hasBody(carol, f"{self.room}/Romeo", "Back again"),
            10,
            "carol to get Romeo's message",
        )
        yield carol.send(self.room, "Welcome back", "groupchat")
        yield until(
            lambda: any(m.body == b"Welcome back" for m in self.received(romeo)),
            10,
            "Romeo to get carol's message",
        )
        [welcome] = [m for m in self.received(romeo) if m.body == b"Welcome back"]
        assert welcome.fromAddress is not None
        self.assertEqual(welcome.fromAddress.uri, f"{self.roomURI};gr=carol")
        self.assertEqual(sorted(carol.roster(self.room)), ["Romeo", "carol"])
        self.assertNoBye(romeo)

    @defer.inlineCallbacks
    def test_linkLossHangUpNoGhost(self) -> Generator[Any, Any, None]:
        """
        Romeo hangs up (BYE) while the XMPP server is down: his chat ends
        (locally) and the gateway forgets him.  The gateway's reconnection
        is held (its C{ClientService} stopped) while the server starts
        again, and carol looks at the room from outside (disco#info, XEP-0045
        6.4: no stanza reaches the occupants, so the server has no reason
        to drop anyone by itself): on a server that keeps occupants across
        its restart (L{keepsOccupants}) Romeo's occupant is still there,
        alone (carol's own left when her stream closed).  Once the gateway's
        link is back that ghost goes (docs/section6.md: the unavailable
        presence goes out as soon as the link is back), the empty room
        with it, and carol, entering again, creates a new room (201) and
        is alone in it.
        """
        carol = yield self.xmppUser("carol")
        romeo, session = yield self.romeoInRoom(carol)
        yield self.stopServer()
        session.end()
        yield until(lambda: romeo.endings, 10, "Romeo's chat to end")
        self.assertEqual([e.cause for e in romeo.endings], [EndCause.LOCAL])
        yield until(lambda: not self.participants, 10, "the gateway to forget Romeo")

        yield self.link.clientService.stopService()
        carol.stop()
        yield deferToThread(self.server.start)
        carol = yield self.xmppUser(None)
        count = yield carol.roomOccupantCount(self.room)
        self.assertEqual(count, 1 if self.keepsOccupants else None)

        self.link.clientService.startService()
        yield until(lambda: self.link.up, 30, "the gateway's link to come back")
        yield pollUntil(
            lambda: carol.roomOccupantCount(self.room),
            lambda count: count is None,
            15,
            "the room to lose Romeo's ghost",
        )
        yield carol.join(self.room, "carol")
        self.assertEqual(carol.roster(self.room), ["carol"])
        [created] = [
            codes
            for kind, sender, codes, _ in carol.seenDetails()
            if kind == "available" and sender == f"{self.room}/carol"
        ][:1]
        self.assertIn(201, created)
        self.assertEqual(self.participants, {})


class ProsodySIPToXMPPFeatureTests(SIPToXMPPFeaturesMixin, TestCase):
    """
    Against Prosody 0.12 (room locking off).
    """

    relaysStandaloneChatStates = True
    keepsOccupants = True
    invitesFromOccupant = True
    participantsMayInvite = True

    def makeServer(self) -> Prosody:
        return Prosody(
            components=(USER_DOMAIN,), roomLocking=False, directory=self.mktemp()
        )


class EjabberdSIPToXMPPFeatureTests(SIPToXMPPFeaturesMixin, TestCase):
    """
    Against ejabberd 23.01.
    """

    relaysStandaloneChatStates = True
    keepsOccupants = False
    invitesFromOccupant = False
    participantsMayInvite = False

    def makeServer(self) -> Ejabberd:
        return Ejabberd(components=(USER_DOMAIN,), directory=self.mktemp())
