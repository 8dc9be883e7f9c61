# -*- test-case-name: tests.interop.test_xmpptosip_servers -*-
"""
Interop, RFC 7702 section 5 ("Gateway A", SPEC C.1, flows F1-F34) end to
end: XMPP users of a real Prosody and of a real ejabberd enter a SIP/MSRP
chat room through the real gateway, and once more with Kamailio as SIP
proxy between the gateway and the room.

The peers, all on 127.0.0.1:

  - the XMPP server (L{Prosody} or L{Ejabberd}), started and stopped by
    each test, with two component domains for the gateway: its user domain
    C{sip.xmpp.test} and its room domain C{chat.sip.test} (C{[xmpp]
    room_domain}: C{room@chat.sip.test} stands for the SIP room
    C{sip:room@chat.sip.test}, docs/section5.md).  ejabberd needs
    C{global_routes: false} on its component listener for that (the
    runner writes it): by default each component connection registers
    every host of the listener, and stanzas for the room domain may go
    down the user domain's connection (the joins then time out);
  - the gateway under test: the real service tree, built by
    L{stoxgw.service.makeService} from a configuration file (as in
    L{tests.interop.test_siptoxmpp_servers}, whose L{gatewayConfig} is
    used), its C{[sip] static_routes} sending C{chat.sip.test} to the
    focus (or to Kamailio);
  - the RFC 7701 conference focus and MSRP switch,
    L{tests.interop.focus}, in its own process (L{FocusProcess}), over real
    SIP and MSRP sockets.  Its standard output says what reached the SIP
    side (C{joined}, C{nickname}, C{message}, C{private}, C{refer},
    C{composing}, C{left}...); its commands make a virtual SIP participant
    ("Romeo") speak (C{say}), whisper (C{whisper}), set the subject, kick,
    shut the room down; L{FocusProcess.kill} kills it hard.  Each test
    starts the focus it needs on a port chosen before the gateway starts;
  - slixmpp users (L{TimelineUser}, in their own threads, see
    L{tests.interop.test_occupant_servers}): juliet, nurse and mercutio of
    the XMPP server.  They send their stanzas raw (a join carries no
    C{<history/>} limit, so the room's history comes) and keep every
    presence and message stanza in one list, in the order received, so
    that tests can check XEP-0045 ordering (R-184);
  - for the AOR scenario, a real SIP participant beside the XMPP users:
    the project's own SIP UA, MSRP endpoint and chat initiator
    (L{tests.interop.test_focus.SIPUser}), dialling the focus directly.

What the XMPP clients receive is asserted stanza by stanza; what reached
the SIP side, by the focus's events.  A negative ("shown once", "never
seen") is proven by ordering: each XMPP user sends a groupchat message
and waits for its reflection, which the gateway gives only after the
switch's 200 on that user's own MSRP session (R-212); the focus copies a
message to every session before it reads the next SEND, and MSRP keeps
the order on a connection, so whatever the focus sent each leg before has
been handled by then (L{XMPPToSIPHarness.settle}).

Every wait is bounded; nothing sleeps in place of an assertion.
"""

from __future__ import annotations

import copy
import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet import defer, reactor
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from stoxgw.config import loadConfig
from stoxgw.service import GatewayService, makeService
from tests.interop.ejabberd import Ejabberd
from tests.interop.focus import FocusProcess, formatLine
from tests.interop.peers import PeerUnavailable, Prosody, freePort, freeUDPAndTCPPort
from tests.interop.test_focus import SIPUser, cpim
from tests.interop.test_occupant_servers import bounded, until
from tests.interop.test_siptoxmpp_features import (
    NS_CHATSTATES,
    NS_CLIENT,
    NS_MUC_USER,
    NS_STANZAS,
    StanzaWatcher,
)
from tests.interop.test_siptoxmpp_servers import (
    USER_DOMAIN,
    RoomRoutingProxy,
    gatewayConfig,
)

#: The gateway's room domain (C{[xmpp] room_domain}) and the focus's
#: domain: C{room@chat.sip.test} is C{sip:room@chat.sip.test}.
ROOM_DOMAIN = "chat.sip.test"
#: The room's name at the focus (the user part of its URI).
ROOM_NAME = "room"
#: The room's bare JID.
ROOM = f"{ROOM_NAME}@{ROOM_DOMAIN}"
#: The room's SIP URI.
ROOM_URI = f"sip:{ROOM}"
#: XEP-0045 C{muc} (join).
NS_MUC = "http://jabber.org/protocol/muc"
#: XEP-0203.
NS_DELAY = "urn:xmpp:delay"
#: The XMPP users every test may use (password: name + C{pass}).
XMPP_USERS = ("juliet", "nurse", "mercutio")
#: The subject the focus's room gets (RFC 7702 Example 11).
SUBJECT = "Today in Verona"


def occupant(nick: str) -> str:
    """
    @return: the occupant JID of C{nick} in L{ROOM}.
    """
    return f"{ROOM}/{nick}"


@dataclass(frozen=True)
class Seen:
    """
    A presence or message stanza an XMPP user received.

    @ivar kind: C{presence} or C{message}.
    @ivar type: Its C{type} (C{available} for a presence without one,
        C{normal} for a message without one).
    @ivar sender: Its C{from}.
    @ivar id: Its C{id}, or C{""}.
    @ivar element: A copy of the whole element.
    """

    kind: str
    type: str
    sender: str
    id: str
    element: ET.Element

    @property
    def nick(self) -> str:
        """
        The resource of C{from} (the occupant's nick).
        """
        return self.sender.partition("/")[2]

    @property
    def statusCodes(self) -> frozenset[int]:
        """
        The XEP-0045 status codes of its C{muc#user} C{<x/>}.
        """
        codes = set()
        for status in self.element.iterfind(
            f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}status"
        ):
            code = status.get("code", "")
            if code.isdigit():
                codes.add(int(code))
        return frozenset(codes)

    @property
    def item(self) -> dict[str, str]:
        """
        The attributes of its C{muc#user} C{<item/>} (empty without one).
        """
        item = self.element.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}item")
        return {} if item is None else dict(item.attrib)

    @property
    def hasMUCUser(self) -> bool:
        """
        Whether it carries a C{muc#user} C{<x/>} (XEP-0045 7.5 private
        messages).
        """
        return self.element.find(f"{{{NS_MUC_USER}}}x") is not None

    def _text(self, name: str) -> str | None:
        child = self.element.find(f"{{{NS_CLIENT}}}{name}")
        return None if child is None else (child.text or "")

    @property
    def body(self) -> str | None:
        """
        The text of its C{<body/>}, or L{None}.
        """
        return self._text("body")

    @property
    def subject(self) -> str | None:
        """
        The text of its C{<subject/>}, or L{None}.
        """
        return self._text("subject")

    @property
    def delay(self) -> dict[str, str] | None:
        """
        The attributes of its XEP-0203 C{<delay/>}, or L{None}.
        """
        delay = self.element.find(f"{{{NS_DELAY}}}delay")
        return None if delay is None else dict(delay.attrib)

    @property
    def errorCondition(self) -> str | None:
        """
        The RFC 6120 condition of its C{<error/>}, or L{None}.
        """
        failure = self.element.find(f"{{{NS_CLIENT}}}error")
        if failure is None:
            return None
        for child in failure:
            if child.tag.startswith(f"{{{NS_STANZAS}}}") and not child.tag.endswith(
                "}text"
            ):
                return child.tag.split("}", 1)[1]
        return ""

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

    def describe(self) -> str:
        """
        A short form for failure messages.
        """
        parts = [self.kind, self.type, self.sender]
        if self.statusCodes:
            parts.append(str(sorted(self.statusCodes)))
        if self.body is not None:
            parts.append(repr(self.body))
        if self.subject is not None:
            parts.append(f"subject={self.subject!r}")
        if self.chatStates:
            parts.append(str(self.chatStates))
        if self.errorCondition is not None:
            parts.append(f"error={self.errorCondition}")
        return " ".join(parts)


class TimelineUser(StanzaWatcher):
    """
    A slixmpp user (L{StanzaWatcher}) that also keeps every presence and
    message stanza, both kinds in one list in the order received
    (L{timeline}), and sends its MUC stanzas raw.
    """

    def __init__(self, jid: str, password: str, port: int) -> None:
        super().__init__(jid, password, port)
        self.timeline: list[Seen] = []
        self._timelineLock = threading.Lock()

    async def _connect(self) -> None:
        await super()._connect()
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath

        for kind in ("presence", "message"):
            self.client.register_handler(
                Callback(
                    f"stoxgw: timeline {kind}",
                    MatchXPath(f"{{{NS_CLIENT}}}{kind}"),
                    lambda stanza, kind=kind: self._onTimeline(kind, stanza),
                )
            )

    def _onTimeline(self, kind: str, stanza: Any) -> None:
        element = copy.deepcopy(stanza.xml)
        default = "available" if kind == "presence" else "normal"
        seen = Seen(
            kind,
            element.get("type") or default,
            element.get("from") or "",
            element.get("id") or "",
            element,
        )
        with self._timelineLock:
            self.timeline.append(seen)

    def mark(self) -> int:
        """
        @return: how many stanzas the timeline holds now (a C{since}).
        """
        with self._timelineLock:
            return len(self.timeline)

    def since(self, since: int = 0) -> list[Seen]:
        """
        @return: the stanzas of the timeline from index C{since} on.
        """
        with self._timelineLock:
            return list(self.timeline[since:])

    def find(self, accept: Callable[[Seen], bool], since: int = 0) -> Seen | None:
        """
        @return: the first stanza from index C{since} on that C{accept}
            takes, or L{None}.
        """
        for stanza in self.since(since):
            if accept(stanza):
                return stanza
        return None

    def fromRoom(self, since: int = 0) -> list[Seen]:
        """
        @return: the stanzas from L{ROOM} or its occupants, from C{since}.
        """
        return [
            s for s in self.since(since) if s.sender.partition("/")[0] == ROOM
        ]

    def bodies(self, sender: str, body: str, since: int = 0) -> list[Seen]:
        """
        @return: the messages from C{sender} with C{body}, from C{since}.
        """
        return [
            s
            for s in self.since(since)
            if s.kind == "message" and s.sender == sender and s.body == body
        ]

    def describeTimeline(self, since: int = 0) -> str:
        """
        The timeline, one stanza a line, for failure messages.
        """
        return "\n".join(s.describe() for s in self.since(since))


def isSelfPresence(nick: str) -> Callable[[Seen], bool]:
    """
    @return: a test for the available self-presence (110) of C{nick}.
    """
    return (
        lambda s: s.kind == "presence"
        and s.type == "available"
        and s.sender == occupant(nick)
        and 110 in s.statusCodes
    )


def isUnavailable(nick: str) -> Callable[[Seen], bool]:
    """
    @return: a test for an unavailable presence from C{nick}.
    """
    return (
        lambda s: s.kind == "presence"
        and s.type == "unavailable"
        and s.sender == occupant(nick)
    )


def isSelfUnavailable(nick: str) -> Callable[[Seen], bool]:
    """
    @return: a test for the unavailable self-presence (110) of C{nick}.
    """
    return lambda s: isUnavailable(nick)(s) and 110 in s.statusCodes


def isAvailable(nick: str) -> Callable[[Seen], bool]:
    """
    @return: a test for an available presence from C{nick}.
    """
    return (
        lambda s: s.kind == "presence"
        and s.type == "available"
        and s.sender == occupant(nick)
    )


class XMPPToSIPHarness:
    """
    The set-up of every test case: the XMPP server (L{makeServer}) with
    the users of L{XMPP_USERS}, the gateway (L{makeService}) with its room
    domain routed to L{sipRoute}, a port for the focus each test starts
    (L{startFocus}).

    @ivar server: The XMPP server.
    @ivar gateway: The gateway's root service.
    @ivar focusPort: The focus's SIP port (UDP and TCP).
    @ivar focus: The focus of the test, once started.
    """

    timeout = 60

    def makeServer(self) -> Any:
        """
        @return: the XMPP server to test against (not started).
        """
        raise NotImplementedError()

    def sipRoute(self) -> str | defer.Deferred[str]:
        """
        @return: the static route of the room domain, C{HOST:PORT/TRANSPORT}:
            by default the focus itself, over TCP.
        """
        return f"127.0.0.1:{self.focusPort}/tcp"

    @defer.inlineCallbacks
    def setUp(self) -> Generator[Any, Any, None]:
        try:
            self.server = self.makeServer()
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        self.server.start()
        self.addCleanup(self.server.stop)  # type: ignore[attr-defined]
        yield defer.gatherResults(
            [
                deferToThread(self.server.register, user, f"{user}pass")
                for user in XMPP_USERS
            ],
            consumeErrors=True,
        )

        self.focusPort = freeUDPAndTCPPort()
        route = yield self.sipRoute()
        directory = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        os.makedirs(directory)
        # Never the focus's port: freeUDPAndTCPPort does not repeat.
        gatewayPort = freeUDPAndTCPPort()
        config = gatewayConfig(
            self.server,
            gatewayPort,
            freePort(),
            sipOptions={"static_routes": f"{ROOM_DOMAIN}={route}"},
        )
        # [xmpp] is the last section gatewayConfig writes.
        assert config.rstrip().rsplit("\n[", 1)[-1].startswith("xmpp]"), config
        config += f"room_domain = {ROOM_DOMAIN}\n"
        path = os.path.join(directory, "stoxgw.conf")
        with open(path, "w") as f:
            f.write(config)
        self.gateway: GatewayService = makeService(loadConfig(path), reactor)
        self.gateway.startService()
        self.addCleanup(self.gateway.stopService)  # type: ignore[attr-defined]
        links = self.gateway.getServiceNamed("xmpp").links
        self.assertEqual(  # type: ignore[attr-defined]
            sorted(link.domain for link in links), sorted([USER_DOMAIN, ROOM_DOMAIN])
        )
        yield until(
            lambda: all(link.up for link in links), 15, "the gateway's component links"
        )
        self.focus: FocusProcess | None = None

    # -- the focus ---------------------------------------------------------------

    @defer.inlineCallbacks
    def startFocus(self, *arguments: str) -> Generator[Any, Any, FocusProcess]:
        """
        Start the focus (in its own process, on L{focusPort}) with these
        options; it is shut down after the test (non-blocking: the
        gateway, on this reactor, answers its BYEs), killed if it hangs.
        """
        focus = FocusProcess(
            arguments,
            domain=ROOM_DOMAIN,
            sipPort=self.focusPort,
            directory=self.mktemp(),  # type: ignore[attr-defined]
        )
        yield deferToThread(focus.start)
        self.addCleanup(focus.shutdown)  # type: ignore[attr-defined]
        self.focus = focus
        return focus

    def event(self, kind: str, *fields: str | None, text: str | None = None) -> str:
        """
        @return: a focus event line (L{formatLine}).
        """
        return formatLine(kind, *fields, text=text)

    def whenEvent(
        self, line: str, since: int = 0, timeout: float = 15.0
    ) -> defer.Deferred[str]:
        """
        Wait (bounded) for a focus event.
        """
        assert self.focus is not None
        return self.focus.whenEvent(line, timeout, since)

    def events(self, since: int = 0) -> list[str]:
        """
        @return: the focus's events from index C{since} on.
        """
        assert self.focus is not None
        return self.focus.events[since:]

    @defer.inlineCallbacks
    def say(self, nick: str, text: str) -> Generator[Any, Any, None]:
        """
        The focus's virtual participant C{nick} speaks in the room; wait
        for the focus to have distributed it.
        """
        assert self.focus is not None
        since = self.focus.mark()
        self.focus.command("say", ROOM_NAME, nick, text=text)
        yield self.whenEvent(
            self.event("message", ROOM_NAME, nick, ROOM_URI, text=text), since
        )

    @defer.inlineCallbacks
    def prepareRoom(self, *arguments: str) -> Generator[Any, Any, FocusProcess]:
        """
        Start the focus with C{arguments} and give its room a virtual SIP
        participant, Romeo, who said "hi" (history), and the subject
        L{SUBJECT}.
        """
        focus = yield self.startFocus(*arguments)
        yield self.say("Romeo", "hi")
        since = focus.mark()
        focus.command("subject", ROOM_NAME, text=SUBJECT)
        yield self.whenEvent(self.event("subject", ROOM_NAME, text=SUBJECT), since)
        return focus

    # -- the XMPP users ------------------------------------------------------------

    @defer.inlineCallbacks
    def xmppUser(self, user: str, resource: str) -> Generator[Any, Any, TimelineUser]:
        """
        Connect C{user} (registered by L{setUp}) as C{user@<domain>/resource};
        disconnected after the test.
        """
        watcher = TimelineUser(
            f"{user}@{self.server.domain}/{resource}",
            f"{user}pass",
            self.server.c2sPort,
        )
        self.addCleanup(watcher.stop)  # type: ignore[attr-defined]
        yield watcher.connect()
        return watcher

    @defer.inlineCallbacks
    def tryEnter(self, watcher: TimelineUser, nick: str) -> Generator[Any, Any, Seen]:
        """
        Send a join presence for C{room/nick} (XEP-0045 7.2, no history
        limit) and wait for the outcome: the self-presence (110) and then
        the subject message (R-189: a subject message ends every join), or
        an error presence from the occupant JID.

        @return: the self-presence or the error presence.
        """
        since = watcher.mark()
        yield watcher.sendRaw(
            f"<presence to={quoteattr(occupant(nick))}><x xmlns='{NS_MUC}'/></presence>"
        )
        outcome: Seen = yield until(
            lambda: watcher.find(
                lambda s: isSelfPresence(nick)(s)
                or (s.kind == "presence" and s.type == "error" and s.sender == occupant(nick)),
                since,
            ),
            20,
            f"{watcher.jid} to enter as {nick}",
        )
        if outcome.type == "error":
            return outcome
        index = watcher.since().index(outcome)
        try:
            yield until(
                lambda: watcher.find(
                    lambda s: s.kind == "message"
                    and s.sender == ROOM
                    and s.subject is not None,
                    index,
                ),
                10,
                f"the subject message after {nick}'s self-presence",
            )
        except AssertionError as e:
            raise AssertionError(
                f"{e}\n{watcher.describeTimeline(since)}"
            ) from None
        return outcome

    @defer.inlineCallbacks
    def enter(self, watcher: TimelineUser, nick: str) -> Generator[Any, Any, int]:
        """
        L{tryEnter}, which must succeed.

        @return: the timeline index where the join began.
        """
        since = watcher.mark()
        outcome = yield self.tryEnter(watcher, nick)
        self.assertEqual(  # type: ignore[attr-defined]
            outcome.type, "available", watcher.describeTimeline(since)
        )
        return since

    @defer.inlineCallbacks
    def bothInRoom(
        self, julietNick: str = "JuliC", nurseNick: str = "Nurse"
    ) -> Generator[Any, Any, tuple[TimelineUser, TimelineUser]]:
        """
        juliet and then nurse enter the room (the focus runs already);
        juliet has seen nurse arrive.
        """
        juliet = yield self.xmppUser("juliet", "balcony")
        nurse = yield self.xmppUser("nurse", "chamber")
        yield self.enter(juliet, julietNick)
        yield self.enter(nurse, nurseNick)
        yield until(
            lambda: juliet.find(isAvailable(nurseNick)),
            10,
            f"juliet to see {nurseNick} enter",
        )
        return juliet, nurse

    def groupchat(
        self, watcher: TimelineUser, body: str, messageID: str, extra: str = ""
    ) -> defer.Deferred[None]:
        """
        Send a groupchat message to the room (XEP-0045 7.4).
        """
        return watcher.sendRaw(
            f"<message to='{ROOM}' type='groupchat' id={quoteattr(messageID)}>"
            f"<body>{escape(body)}</body>{extra}</message>"
        )

    @defer.inlineCallbacks
    def reflected(
        self, watcher: TimelineUser, nick: str, body: str, messageID: str
    ) -> Generator[Any, Any, Seen]:
        """
        Send a groupchat message as C{nick} and wait for its reflection
        (XEP-0045 7.4, R-191, R-212: from the occupant JID, with the id).
        """
        since = watcher.mark()
        yield self.groupchat(watcher, body, messageID)
        reflection: Seen = yield until(
            lambda: watcher.find(
                lambda s: s.kind == "message"
                and s.sender == occupant(nick)
                and s.body == body,
                since,
            ),
            15,
            f"the reflection of {body!r}",
        )
        return reflection

    @defer.inlineCallbacks
    def settle(self, *users: tuple[TimelineUser, str]) -> Generator[Any, Any, None]:
        """
        Each (user, nick) sends a groupchat message and gets its
        reflection: the gateway reflects after the switch's 200 on the
        user's own leg (R-212), and the focus had copied everything it
        sent before onto that leg (module docstring), so anything the
        focus sent earlier has been handled.
        """
        for number, (watcher, nick) in enumerate(users):
            yield self.reflected(watcher, nick, f"(settle {number} {nick})", f"settle{number}")


class XMPPToSIPScenariosMixin(XMPPToSIPHarness):
    """
    RFC 7702 section 5 on one XMPP server (see the subclasses).
    """

    @defer.inlineCallbacks
    def test_rosterBeforeSelfPresence(self) -> Generator[Any, Any, None]:
        """
        F1-F11, R-184, R-016, R-017, R-019, R-012 (SPEC C.1.1): the focus's
        room has a virtual participant, Romeo, who said "hi", and a
        subject.  juliet's join as C{JuliC} becomes an INVITE and a
        NICKNAME C{JuliC} at the focus; she then receives, in this order:
        Romeo's presence (role participant, affiliation none, RFC 7702
        Table 3), her own presence with status 110, the history (Romeo's
        "hi" with a XEP-0203 delay) and the subject message from the room
        JID.  The focus lists Romeo's address (associated-aors): the room
        is non-anonymous, his item has his real JID and juliet's
        self-presence status 100 (R-187, RFC 7702 Table 2).
        """
        focus = yield self.prepareRoom()
        since = focus.mark()
        juliet = yield self.xmppUser("juliet", "balcony")
        start = yield self.enter(juliet, "JuliC")
        timeline = juliet.fromRoom(start)
        description = juliet.describeTimeline(start)
        self.assertEqual(
            [(s.kind, s.sender) for s in timeline],
            [
                ("presence", occupant("Romeo")),
                ("presence", occupant("JuliC")),
                ("message", occupant("Romeo")),
                ("message", ROOM),
            ],
            description,
        )
        romeo, me, history, subject = timeline
        self.assertEqual(romeo.type, "available", description)
        self.assertEqual(
            (romeo.item.get("role"), romeo.item.get("affiliation")),
            ("participant", "none"),
            description,
        )
        self.assertNotIn(110, romeo.statusCodes)
        self.assertIn(110, me.statusCodes, description)
        self.assertEqual(
            (me.item.get("role"), me.item.get("affiliation")),
            ("participant", "none"),
            description,
        )
        # R-187, RFC 7702 Table 2: the focus lists Romeo's associated-aors
        # (sip:Romeo@sip.test): his real JID is shown, the room is
        # non-anonymous (100).
        self.assertIn(100, me.statusCodes, description)
        self.assertEqual(
            romeo.item.get("jid", "").partition("/")[0].lower(), "romeo@sip.test"
        )
        self.assertEqual((history.type, history.body), ("groupchat", "hi"), description)
        self.assertIsNotNone(history.delay, "history without a XEP-0203 delay")
        assert history.delay is not None
        self.assertTrue(history.delay.get("stamp"), history.delay)
        self.assertEqual((subject.type, subject.subject), ("groupchat", SUBJECT))
        self.assertIsNone(subject.body)

        events = self.events(since)
        self.assertIn(
            self.event("joined", ROOM_NAME, None, f"sip:juliet@{self.server.domain}"),
            events,
        )
        self.assertIn(self.event("nickname", ROOM_NAME, None, "JuliC", "200"), events)
        self.assertIn(
            self.event("subscribed", ROOM_NAME, f"sip:juliet@{self.server.domain}"),
            events,
        )

    @defer.inlineCallbacks
    def test_secondUser(self) -> Generator[Any, Any, None]:
        """
        R-184, R-051, R-016 (SPEC C.1.1 for a second XMPP user): nurse
        enters after juliet: she sees Romeo and JuliC before her own 110,
        then the history once (the focus replays it on her new leg too;
        it was shown already), then the subject; juliet sees nurse arrive
        and does not get "hi" again.  The focus has two real participants,
        one INVITE each.  A message of Romeo reaches each XMPP user exactly
        once, though the focus sends it on both legs (SPEC C.1.3 step 5,
        docs/section5.md "shown once").
        """
        focus = yield self.prepareRoom()
        since = focus.mark()
        juliet = yield self.xmppUser("juliet", "balcony")
        nurse = yield self.xmppUser("nurse", "chamber")
        yield self.enter(juliet, "JuliC")
        start = yield self.enter(nurse, "Nurse")
        yield until(lambda: juliet.find(isAvailable("Nurse")), 10, "juliet to see Nurse")

        timeline = nurse.fromRoom(start)
        description = nurse.describeTimeline(start)
        presences = [s for s in timeline if s.kind == "presence"]
        [me] = [s for s in presences if 110 in s.statusCodes]
        before = presences[: presences.index(me)]
        self.assertEqual(
            sorted(s.sender for s in before),
            [occupant("JuliC"), occupant("Romeo")],
            description,
        )
        for other in before:
            self.assertEqual(
                (other.type, other.item.get("role"), other.item.get("affiliation")),
                ("available", "participant", "none"),
                description,
            )
        messages = [s for s in timeline if s.kind == "message"]
        self.assertEqual(
            [(s.sender, s.body, s.subject) for s in messages],
            [(occupant("Romeo"), "hi", None), (ROOM, None, SUBJECT)],
            description,
        )
        self.assertGreater(timeline.index(messages[0]), timeline.index(me))

        joins = [
            line
            for line in self.events(since)
            if line.startswith(f"joined {ROOM_NAME} - ")
        ]
        self.assertEqual(
            sorted(joins),
            [
                self.event("joined", ROOM_NAME, None, f"sip:juliet@{self.server.domain}"),
                self.event("joined", ROOM_NAME, None, f"sip:nurse@{self.server.domain}"),
            ],
        )

        yield self.say("Romeo", "How now, who calls?")
        for watcher in (juliet, nurse):
            yield until(
                lambda: watcher.bodies(occupant("Romeo"), "How now, who calls?"),
                10,
                f"{watcher.jid} to get Romeo's message",
            )
        yield self.settle((juliet, "JuliC"), (nurse, "Nurse"))
        for watcher in (juliet, nurse):
            self.assertEqual(
                len(watcher.bodies(occupant("Romeo"), "How now, who calls?")),
                1,
                watcher.describeTimeline(),
            )
            self.assertEqual(
                len(watcher.bodies(occupant("Romeo"), "hi")),
                1,
                watcher.describeTimeline(),
            )

    @defer.inlineCallbacks
    def test_groupchat(self) -> Generator[Any, Any, None]:
        """
        F16-F19, R-021, R-022, R-061, R-191, R-212 (SPEC C.1.3): juliet's
        groupchat reaches the focus as a public message To the room URI
        from JuliC, comes back to juliet from C{room/JuliC} with her id,
        and nurse gets it once (the gateway shows it to its own users; the
        focus's copy on nurse's leg is not shown again).  Romeo's message
        reaches both, once each.
        """
        focus = yield self.prepareRoom()
        juliet, nurse = yield self.bothInRoom()
        since = focus.mark()
        nurseSince = nurse.mark()
        text = "Who knows where Romeo is?"
        reflection = yield self.reflected(juliet, "JuliC", text, "lzfed24s")
        self.assertEqual((reflection.type, reflection.id), ("groupchat", "lzfed24s"))
        yield self.whenEvent(
            self.event("message", ROOM_NAME, "JuliC", ROOM_URI, text=text), since
        )
        yield self.say("Romeo", "Here, in the orchard")
        for watcher in (juliet, nurse):
            yield until(
                lambda: watcher.bodies(occupant("Romeo"), "Here, in the orchard"),
                10,
                f"{watcher.jid} to get Romeo's message",
            )
        yield self.settle((juliet, "JuliC"), (nurse, "Nurse"))
        copies = nurse.bodies(occupant("JuliC"), text, nurseSince)
        self.assertEqual(len(copies), 1, nurse.describeTimeline(nurseSince))
        self.assertEqual(copies[0].type, "groupchat")
        self.assertEqual(len(juliet.bodies(occupant("JuliC"), text)), 1)
        for watcher in (juliet, nurse):
            self.assertEqual(
                len(watcher.bodies(occupant("Romeo"), "Here, in the orchard")),
                1,
                watcher.describeTimeline(),
            )
        self.assertEqual(
            [line for line in self.events(since) if line.startswith("refused ")], []
        )

    @defer.inlineCallbacks
    def test_privateMessages(self) -> Generator[Any, Any, None]:
        """
        F20-F22, R-023, R-024, R-192 (SPEC C.1.4): juliet's private
        message to C{room/Romeo} reaches the focus as a private message
        from JuliC to Romeo; Romeo's private message (the focus's
        C{whisper}: CPIM From C{<sip:room@chat.sip.test;gr=Romeo>}, To
        juliet's AOR) reaches juliet as a C{chat} message from
        C{room/Romeo} with the C{muc#user} C{<x/>}, and not nurse; a
        private message from nurse to C{room/JuliC} travels through the
        focus and reaches juliet from C{room/Nurse}.
        """
        focus = yield self.prepareRoom()
        juliet, nurse = yield self.bothInRoom()
        since = focus.mark()
        yield juliet.sendRaw(
            f"<message to='{occupant('Romeo')}' type='chat' id='pm1'>"
            f"<body>O Romeo, Romeo!</body><x xmlns='{NS_MUC_USER}'/></message>"
        )
        yield self.whenEvent(
            self.event("private", ROOM_NAME, "JuliC", "Romeo", text="O Romeo, Romeo!"),
            since,
        )

        whisper = "Thou knowest the mask of night is on my face"
        julietSince, nurseSince = juliet.mark(), nurse.mark()
        focus.command("whisper", ROOM_NAME, "Romeo", "JuliC", text=whisper)
        yield self.whenEvent(
            self.event("private", ROOM_NAME, "Romeo", "JuliC", text=whisper), since
        )
        received = yield until(
            lambda: juliet.bodies(occupant("Romeo"), whisper, julietSince),
            10,
            "juliet to get Romeo's private message",
        )
        self.assertEqual(len(received), 1)
        self.assertEqual(received[0].type, "chat", received[0].describe())
        self.assertTrue(received[0].hasMUCUser, "no muc#user <x/> (XEP-0045 7.5)")
        self.assertIsNone(received[0].delay)

        yield nurse.sendRaw(
            f"<message to='{occupant('JuliC')}' type='chat' id='pm2'>"
            f"<body>Madam, your mother craves a word</body>"
            f"<x xmlns='{NS_MUC_USER}'/></message>"
        )
        yield self.whenEvent(
            self.event(
                "private",
                ROOM_NAME,
                "Nurse",
                "JuliC",
                text="Madam, your mother craves a word",
            ),
            since,
        )
        fromNurse = yield until(
            lambda: juliet.bodies(
                occupant("Nurse"), "Madam, your mother craves a word", julietSince
            ),
            10,
            "juliet to get nurse's private message",
        )
        self.assertEqual(fromNurse[0].type, "chat", fromNurse[0].describe())
        yield self.settle((juliet, "JuliC"), (nurse, "Nurse"))
        self.assertEqual(
            [s.describe() for s in nurse.since(nurseSince) if s.body == whisper], []
        )
        self.assertEqual(len(juliet.bodies(occupant("Romeo"), whisper)), 1)
        self.assertEqual(
            [s.describe() for s in juliet.since(julietSince) if s.type == "error"], []
        )

    @defer.inlineCallbacks
    def test_nickChangeAndConflict(self) -> Generator[Any, Any, None]:
        """
        F23-F26, R-025, R-193, R-090, R-013 (SPEC C.1.5, C.1.2): juliet's
        change to C{CapuletGirl} is a NICKNAME at the focus; nurse sees the
        303 pair, juliet the same with 110; her next message comes from
        the new nick.  A change to C{Tybalt}, a word the focus reserves,
        gets C{<conflict/>} and the nick stays.  mercutio's join as
        C{Tybalt} gets C{<conflict/>}; his join as C{Mercutio} then
        succeeds on the same SIP dialog (SPEC C.1.2 step 3): the focus saw
        one INVITE from him and two NICKNAMEs; nurse never sees Tybalt.
        """
        focus = yield self.prepareRoom("--reserved", "Tybalt")
        juliet, nurse = yield self.bothInRoom()
        since = focus.mark()
        julietSince, nurseSince = juliet.mark(), nurse.mark()
        yield juliet.sendRaw(f"<presence to='{occupant('CapuletGirl')}'/>")
        yield until(
            lambda: nurse.find(isAvailable("CapuletGirl"), nurseSince),
            10,
            "nurse to see CapuletGirl",
        )
        self.assertIn(
            self.event("nickname", ROOM_NAME, "JuliC", "CapuletGirl", "200"),
            self.events(since),
        )
        for watcher, start, selfCodes in (
            (nurse, nurseSince, frozenset({303})),
            (juliet, julietSince, frozenset({303, 110})),
        ):
            yield until(
                lambda: watcher.find(isAvailable("CapuletGirl"), start),
                10,
                f"{watcher.jid} to see CapuletGirl",
            )
            change = [
                s
                for s in watcher.fromRoom(start)
                if s.kind == "presence" and s.nick in ("JuliC", "CapuletGirl")
            ]
            description = watcher.describeTimeline(start)
            self.assertEqual(
                [(s.type, s.nick) for s in change[:2]],
                [("unavailable", "JuliC"), ("available", "CapuletGirl")],
                description,
            )
            self.assertTrue(selfCodes <= change[0].statusCodes, description)
            self.assertEqual(change[0].item.get("nick"), "CapuletGirl", description)
            if 110 in selfCodes:
                self.assertIn(110, change[1].statusCodes, description)
            else:
                self.assertNotIn(110, change[0].statusCodes, description)
        reflection = yield self.reflected(juliet, "CapuletGirl", "A rose", "rose")
        self.assertEqual(reflection.id, "rose")
        yield self.whenEvent(
            self.event("message", ROOM_NAME, "CapuletGirl", ROOM_URI, text="A rose"),
            since,
        )

        # A refused change (RFC 7701 7.2): conflict, the old nick stays.
        tybaltSince = juliet.mark()
        yield juliet.sendRaw(f"<presence to='{occupant('Tybalt')}'/>")
        refusal = yield until(
            lambda: juliet.find(
                lambda s: s.kind == "presence" and s.type == "error", tybaltSince
            ),
            10,
            "juliet's nick change to Tybalt to be refused",
        )
        self.assertEqual(refusal.sender, occupant("Tybalt"), refusal.describe())
        self.assertEqual(refusal.errorCondition, "conflict", refusal.describe())
        self.assertIn(
            self.event("nickname", ROOM_NAME, "CapuletGirl", "Tybalt", "425"),
            self.events(since),
        )
        yield self.reflected(juliet, "CapuletGirl", "Still a rose", "rose2")

        # A refused join (RFC 7702 5.6): conflict; the next nick on the
        # same dialog.
        mercutio = yield self.xmppUser("mercutio", "street")
        mercutioAOR = f"sip:mercutio@{self.server.domain}"
        joinSince = focus.mark()
        refused = yield self.tryEnter(mercutio, "Tybalt")
        self.assertEqual(refused.type, "error", refused.describe())
        self.assertEqual(refused.errorCondition, "conflict", refused.describe())
        self.assertIn(NS_MUC, [child.tag.split("}")[0][1:] for child in refused.element])
        yield self.whenEvent(
            self.event("nickname", ROOM_NAME, None, "Tybalt", "425"), joinSince
        )
        yield self.enter(mercutio, "Mercutio")
        yield until(
            lambda: nurse.find(isAvailable("Mercutio"), nurseSince),
            10,
            "nurse to see Mercutio",
        )
        events = self.events(joinSince)
        self.assertEqual(
            [line for line in events if line.startswith("joined ")],
            [self.event("joined", ROOM_NAME, None, mercutioAOR)],
        )
        self.assertEqual(
            [line for line in events if line.startswith("nickname ")],
            [
                self.event("nickname", ROOM_NAME, None, "Tybalt", "425"),
                self.event("nickname", ROOM_NAME, None, "Mercutio", "200"),
            ],
        )
        self.assertEqual(
            [line for line in events if line.startswith(("left ", "rejected "))], []
        )
        self.assertIsNone(
            nurse.find(lambda s: s.sender == occupant("Tybalt")),
            nurse.describeTimeline(nurseSince),
        )

    @defer.inlineCallbacks
    def test_aorSenders(self) -> Generator[Any, Any, None]:
        """
        R-024, R-016, R-068 (RFC 7701 sections 6.1 and 9.4; docs/section5.md
        "resolved through entity/associated-aors"): a focus that forwards
        the sender's own CPIM From (C{--from-style aor}) and lists users by
        AOR (C{--user-entity aor}).  A real SIP participant,
        C{sip:montague@example.com} with the nickname Romeo, writes CPIM
        From his AOR, then his AOR with a C{gr}; nurse, as C{Angelica},
        reaches juliet's leg From C{<sip:nurse@...>}.  Each message is
        shown once, from C{room/Romeo} or C{room/Angelica}; nobody ever
        sees an occupant C{montague} or C{nurse} (a second occupant for
        the same participant).
        """
        focus = yield self.startFocus("--from-style", "aor", "--user-entity", "aor")
        romeo = SIPUser(self, focus, "montague")  # type: ignore[arg-type]
        since = focus.mark()
        recorder, d = romeo.join(ROOM_NAME, acceptWrappedTypes=("text/plain",))
        session = yield d
        yield self.whenEvent(self.event("joined", ROOM_NAME, None, romeo.aor), since)
        code = yield bounded(session.sendNickname("Romeo"))
        self.assertEqual(code, 200)
        juliet, nurse = yield self.bothInRoom(nurseNick="Angelica")
        for watcher in (juliet, nurse):
            self.assertIsNotNone(watcher.find(isAvailable("Romeo")), watcher.describeTimeline())

        first, second = "Did my heart love till now?", "Forswear it, sight!"
        yield bounded(
            session.sendMessage(
                "message/cpim", cpim(first, f"<{romeo.aor}>", dateTime=None)
            )
        )
        yield bounded(
            session.sendMessage(
                "message/cpim",
                cpim(second, f"Romeo <{romeo.aor};gr=dev1>", dateTime=None),
            )
        )
        for watcher in (juliet, nurse):
            yield until(
                lambda: watcher.bodies(occupant("Romeo"), second),
                10,
                f"{watcher.jid} to get Romeo's messages",
            )
        nurseText = "Your love says, like an honest gentleman"
        yield self.reflected(nurse, "Angelica", nurseText, "angelica1")
        yield until(
            lambda: juliet.bodies(occupant("Angelica"), nurseText),
            10,
            "juliet to get Angelica's message",
        )
        # What the SIP participant got: the XMPP user's AOR as CPIM From,
        # unchanged by the switch (RFC 7701 section 9.4).
        for _ in range(10):
            message = yield recorder.next()
            if message.body.endswith(nurseText.encode("utf-8")):
                break
        else:
            self.fail(f"Romeo did not get {nurseText!r}")
        self.assertIn(f"From: <sip:nurse@{self.server.domain}>".encode(), message.body)

        yield self.settle((juliet, "JuliC"), (nurse, "Angelica"))
        for watcher in (juliet, nurse):
            description = watcher.describeTimeline()
            nicks = {s.nick for s in watcher.fromRoom() if s.kind == "presence"}
            self.assertEqual(
                nicks,
                {"Romeo", "JuliC", "Angelica"},
                f"{watcher.jid} sees a second occupant for a participant"
                f" (a CPIM From AOR not resolved through the roster):\n{description}",
            )
            for text in (first, second):
                self.assertEqual(
                    len(watcher.bodies(occupant("Romeo"), text)), 1, description
                )
                self.assertEqual(
                    [s.sender for s in watcher.since() if s.body == text],
                    [occupant("Romeo")],
                    description,
                )
            for text, nick in ((nurseText, "Angelica"), ("(settle 0 JuliC)", "JuliC")):
                self.assertEqual(
                    [s.sender for s in watcher.since() if s.body == text],
                    [occupant(nick)],
                    description,
                )

    @defer.inlineCallbacks
    def test_mediatedInvitation(self) -> Generator[Any, Any, None]:
        """
        F27-F30, R-026, R-183 (SPEC C.1.6): juliet's mediated invitation
        (XEP-0045 7.8.2) of C{benvolio@example.org} becomes a REFER to the
        room naming C{sip:benvolio@example.org} (RFC 7247 section 6.5);
        the focus accepts it and juliet gets no error.
        """
        focus = yield self.prepareRoom()
        juliet = yield self.xmppUser("juliet", "balcony")
        yield self.enter(juliet, "JuliC")
        since, julietSince = focus.mark(), juliet.mark()
        yield juliet.sendRaw(
            f"<message to='{ROOM}' id='invite1'><x xmlns='{NS_MUC_USER}'>"
            "<invite to='benvolio@example.org'><reason>Come, cousin</reason>"
            "</invite></x></message>"
        )
        yield self.whenEvent(
            self.event("refer", ROOM_NAME, "sip:benvolio@example.org"), since
        )
        yield self.settle((juliet, "JuliC"))
        self.assertEqual(
            [s.describe() for s in juliet.since(julietSince) if s.type == "error"], []
        )

    @defer.inlineCallbacks
    def test_kickAndShutdown(self) -> Generator[Any, Any, None]:
        """
        R-218, SPEC C.1.7 step 5 and E.5 (docs/section5.md "Leaving and
        being removed"): the focus kicks its SIP participant Romeo (a
        NOTIFY with his endpoint C{disconnected}, disconnection-method
        C{booted}, then one deleting him): juliet sees Romeo leave with
        307.  The focus's BYE with C{Reason: SIP;cause=403}
        (C{kick}) removes juliet: her own unavailable presence has 110 and
        307, nurse sees JuliC leave with 307.  The focus's shutdown (BYE
        with cause 503, RFC 7701 section 5.3) then removes nurse with 110
        and 332.
        """
        focus = yield self.prepareRoom()
        juliet, nurse = yield self.bothInRoom()
        julietSince = juliet.mark()
        focus.command("kick", ROOM_NAME, "Romeo")
        romeo = yield until(
            lambda: juliet.find(isUnavailable("Romeo"), julietSince),
            15,
            "juliet to see Romeo kicked",
        )
        self.assertEqual(romeo.statusCodes & {110, 307, 333}, {307}, romeo.describe())
        julietSince, nurseSince = juliet.mark(), nurse.mark()
        since = focus.mark()
        focus.command("kick", ROOM_NAME, "JuliC", "403")
        kicked = yield until(
            lambda: juliet.find(isUnavailable("JuliC"), julietSince),
            15,
            "juliet to be removed",
        )
        self.assertEqual(kicked.statusCodes & {110, 307, 332, 333}, {110, 307}, kicked.describe())
        self.assertEqual(kicked.item.get("role"), "none", kicked.describe())
        seen = yield until(
            lambda: nurse.find(isUnavailable("JuliC"), nurseSince),
            15,
            "nurse to see JuliC removed",
        )
        self.assertIn(307, seen.statusCodes, seen.describe())
        self.assertNotIn(110, seen.statusCodes, seen.describe())
        yield self.whenEvent(self.event("left", ROOM_NAME, "JuliC"), since)

        status = yield focus.shutdown()
        self.assertEqual(status, 0, focus.describe("the focus's exit status"))
        removed = yield until(
            lambda: nurse.find(isUnavailable("Nurse"), nurseSince),
            15,
            "nurse to be removed by the shutdown",
        )
        self.assertEqual(
            removed.statusCodes & {110, 307, 332, 333}, {110, 332}, removed.describe()
        )

    @defer.inlineCallbacks
    def test_focusKilled(self) -> Generator[Any, Any, None]:
        """
        R-218, R-145 (SPEC E.5, docs/section5.md: "a failed MSRP
        connection or dialog is 333"): the focus process is killed hard
        (SIGKILL: its MSRP and SIP connections drop, no BYE): juliet and
        nurse each get their own unavailable presence with 110 and 333.
        """
        focus = yield self.prepareRoom()
        juliet, nurse = yield self.bothInRoom()
        marks = {juliet: juliet.mark(), nurse: nurse.mark()}
        yield deferToThread(focus.kill)
        for watcher, nick in ((juliet, "JuliC"), (nurse, "Nurse")):
            removed = yield until(
                lambda: watcher.find(isSelfUnavailable(nick), marks[watcher]),
                20,
                f"{nick} to be removed after the focus died",
            )
            self.assertEqual(
                removed.statusCodes & {110, 307, 332, 333},
                {110, 333},
                removed.describe(),
            )

    @defer.inlineCallbacks
    def test_leave(self) -> Generator[Any, Any, None]:
        """
        F31-F34, R-028, R-030, R-190 (SPEC C.1.7): juliet leaves: the focus
        sees her session end (BYE), she gets her own unavailable presence
        with 110 (role none), nurse sees JuliC leave without a removal
        code.  The room still works for nurse: Romeo's next message and
        his leaving (a roster change, now through nurse's conference
        subscription, R-015) reach her.
        """
        focus = yield self.prepareRoom()
        juliet, nurse = yield self.bothInRoom()
        since, julietSince, nurseSince = focus.mark(), juliet.mark(), nurse.mark()
        yield juliet.sendRaw(
            f"<presence to='{occupant('JuliC')}' type='unavailable'>"
            "<status>O, look! methinks I see my cousin's ghost</status></presence>"
        )
        gone = yield until(
            lambda: juliet.find(isUnavailable("JuliC"), julietSince),
            10,
            "juliet's own unavailable presence",
        )
        self.assertIn(110, gone.statusCodes, gone.describe())
        self.assertEqual(gone.item.get("role"), "none", gone.describe())
        self.assertEqual(gone.statusCodes & {307, 332, 333}, frozenset())
        seen = yield until(
            lambda: nurse.find(isUnavailable("JuliC"), nurseSince),
            10,
            "nurse to see JuliC leave",
        )
        self.assertEqual(seen.statusCodes & {110, 307, 332, 333}, frozenset(), seen.describe())
        yield self.whenEvent(self.event("left", ROOM_NAME, "JuliC"), since)

        yield self.say("Romeo", "Is she gone?")
        yield until(
            lambda: nurse.bodies(occupant("Romeo"), "Is she gone?"),
            10,
            "nurse to get Romeo's message",
        )
        focus.command("leave", ROOM_NAME, "Romeo")
        yield until(
            lambda: nurse.find(isUnavailable("Romeo"), nurseSince),
            10,
            "nurse to see Romeo leave",
        )

    @defer.inlineCallbacks
    def test_chatStates(self) -> Generator[Any, Any, None]:
        """
        R-225, R-120, SPEC E.6: juliet's standalone C{<composing/>} in
        groupchat reaches the focus as an isComposing C{active} from
        JuliC, her C{<active/>} as C{idle}; nurse sees JuliC composing.
        """
        focus = yield self.prepareRoom()
        juliet, nurse = yield self.bothInRoom()
        since, nurseSince = focus.mark(), nurse.mark()
        yield juliet.sendRaw(
            f"<message to='{ROOM}' type='groupchat' id='cs1'>"
            f"<composing xmlns='{NS_CHATSTATES}'/></message>"
        )
        yield self.whenEvent(self.event("composing", ROOM_NAME, "JuliC", "active"), since)
        yield until(
            lambda: nurse.find(
                lambda s: s.kind == "message"
                and s.sender == occupant("JuliC")
                and s.chatStates == ["composing"],
                nurseSince,
            ),
            10,
            "nurse to see JuliC composing",
        )
        yield juliet.sendRaw(
            f"<message to='{ROOM}' type='groupchat' id='cs2'>"
            f"<active xmlns='{NS_CHATSTATES}'/></message>"
        )
        yield self.whenEvent(self.event("composing", ROOM_NAME, "JuliC", "idle"), since)
        self.assertEqual(
            [line for line in self.events(since) if line.startswith("message ")], []
        )


class ProsodyXMPPToSIPTests(XMPPToSIPScenariosMixin, TestCase):
    """
    Against Prosody 0.12: C{chat.sip.test} is a component of it.
    """

    def makeServer(self) -> Prosody:
        return Prosody(
            components=(USER_DOMAIN, ROOM_DOMAIN),
            roomLocking=False,
            directory=self.mktemp(),
        )


class EjabberdXMPPToSIPTests(XMPPToSIPScenariosMixin, TestCase):
    """
    Against ejabberd 23.01: C{chat.sip.test} is a host of its
    C{ejabberd_service} listener.
    """

    def makeServer(self) -> Ejabberd:
        return Ejabberd(components=(USER_DOMAIN, ROOM_DOMAIN), directory=self.mktemp())


class KamailioXMPPToSIPTests(XMPPToSIPHarness, TestCase):
    """
    RFC 7702 section 5 with Kamailio 5.6 as a record-routing SIP proxy
    between the gateway and the focus (RFC 3261 16.12, 12.1.1), against
    Prosody: the gateway's static route for C{chat.sip.test} is Kamailio,
    which relays initial requests to the focus (L{RoomRoutingProxy}); MSRP
    goes straight between the gateway and the switch.
    """

    def makeServer(self) -> Prosody:
        return Prosody(
            components=(USER_DOMAIN, ROOM_DOMAIN),
            roomLocking=False,
            directory=self.mktemp(),
        )

    @defer.inlineCallbacks
    def sipRoute(self) -> Generator[Any, Any, str]:
        try:
            self.proxy = RoomRoutingProxy(self.focusPort, directory=self.mktemp())
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        yield deferToThread(self.proxy.start)
        self.addCleanup(deferToThread, self.proxy.stop)
        return f"127.0.0.1:{self.proxy.port}/tcp"

    @defer.inlineCallbacks
    def test_enterTalkLeave(self) -> Generator[Any, Any, None]:
        """
        F1-F19, F31-F34 through Kamailio: juliet's join (the INVITE and the
        conference SUBSCRIBE relayed as initial requests, the focus's
        NOTIFYs back along the record-route) gives her Romeo, herself, the
        history and the subject; her groupchat reaches the focus and is
        reflected; Romeo's message reaches her; her leave is a BYE along
        the route set (the focus sees her leave).
        """
        focus = yield self.prepareRoom()
        since = focus.mark()
        juliet = yield self.xmppUser("juliet", "balcony")
        start = yield self.enter(juliet, "JuliC")
        self.assertEqual(
            [(s.kind, s.sender) for s in juliet.fromRoom(start)],
            [
                ("presence", occupant("Romeo")),
                ("presence", occupant("JuliC")),
                ("message", occupant("Romeo")),
                ("message", ROOM),
            ],
            juliet.describeTimeline(start),
        )
        self.assertIn(self.event("nickname", ROOM_NAME, None, "JuliC", "200"), self.events(since))

        reflection = yield self.reflected(juliet, "JuliC", "Through the proxy", "kam1")
        self.assertEqual(reflection.id, "kam1")
        yield self.whenEvent(
            self.event("message", ROOM_NAME, "JuliC", ROOM_URI, text="Through the proxy"),
            since,
        )
        yield self.say("Romeo", "Heard you")
        yield until(
            lambda: juliet.bodies(occupant("Romeo"), "Heard you"),
            10,
            "juliet to get Romeo's message",
        )
        julietSince = juliet.mark()
        yield juliet.sendRaw(f"<presence to='{occupant('JuliC')}' type='unavailable'/>")
        yield until(
            lambda: juliet.find(isSelfUnavailable("JuliC"), julietSince),
            10,
            "juliet's own unavailable presence",
        )
        yield self.whenEvent(self.event("left", ROOM_NAME, "JuliC"), since)
        log = self.proxy.log()
        for expected in (
            "RELAY INVITE initial",
            "RELAY ACK in-dialog",
            "RELAY SUBSCRIBE initial",
            "RELAY NOTIFY in-dialog",
            "RELAY BYE in-dialog",
        ):
            self.assertIn(expected, log)
        self.assertNotIn("NOROUTE", log)
