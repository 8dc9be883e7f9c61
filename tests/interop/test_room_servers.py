# -*- test-case-name: tests.interop.test_room_servers -*-
"""
Interop: an XMPP client (slixmpp, a registered user on a real Prosody or a
real ejabberd) enters a room the gateway hosts on its room domain (RFC 7702
section 5; XEP-0045 section 7.2 order, R-184 to R-191).  The same tests run
against each server (L{RoomServerTestsMixin} and its subclasses); the
server accepts the room domain as a XEP-0114 component.

The gateway side runs in-process on the real reactor: a L{ComponentLink}
for the room domain carrying the L{MUCService} and its disco handlers, with
a room the test fills (two SIP-side participants, three history entries
with old timestamps, a subject).

slixmpp runs in a thread of its own with its own asyncio event loop, and
hands every stanza it receives to the test through a thread-safe queue.
That keeps the two event loops apart (no asyncio reactor has to be
installed before trial's global reactor, which other tests in the same run
use), and the test's waits stay plain bounded polls on the Twisted side.
"""

from __future__ import annotations

import asyncio
import copy
import queue
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import SkipTest, TestCase
from zope.interface import implementer

import stoxgw.xmpp  # noqa: F401  (wokkel compat first)
from stoxgw.rooms.model import HistoryEntry, Participant, Room, RoomSettings, Subject
from stoxgw.xmpp.component import ComponentLink
from stoxgw.xmpp.disco import RoomDisco, discoHandlers
from stoxgw.xmpp.room import IRoomBackend, JoinAccepted, MUCService
from tests.interop.ejabberd import Ejabberd
from tests.interop.peers import PeerUnavailable, Prosody

ROOM_DOMAIN = "chat.sip.xmpp.test"
ROOM = f"montague@{ROOM_DOMAIN}"
NICK = "JuliC"
C = "{jabber:client}"
MUC_USER = "{http://jabber.org/protocol/muc#user}"
DELAY = "{urn:xmpp:delay}"
OLD = datetime(2015, 10, 15, 18, 0, 0, tzinfo=timezone.utc)


@implementer(IRoomBackend)
class AcceptingBackend:
    """
    Accepts everything at once, as a SIP focus that says yes would.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def joinRequested(
        self, roomJID: str, nick: str, realJID: str, password: str | None, history: Any
    ) -> defer.Deferred[JoinAccepted | None]:
        self.calls.append(("joinRequested", roomJID, nick, realJID))
        return defer.succeed(None)

    def nickChangeRequested(
        self, roomJID: str, nick: str, newNick: str, realJID: str
    ) -> defer.Deferred[str | None]:
        return defer.succeed(None)

    def messageSent(
        self,
        roomJID: str,
        nick: str,
        realJID: str,
        body: str,
        messageID: str | None,
        chatState: str | None,
    ) -> defer.Deferred[None]:
        self.calls.append(("messageSent", nick, body, messageID))
        return defer.succeed(None)

    def privateMessageSent(
        self,
        roomJID: str,
        nick: str,
        realJID: str,
        toNick: str,
        body: str,
        messageID: str | None,
        chatState: str | None,
    ) -> defer.Deferred[None]:
        return defer.succeed(None)

    def chatStateSent(
        self, roomJID: str, nick: str, realJID: str, state: str, toNick: str | None
    ) -> None:
        pass

    def presenceChanged(
        self,
        roomJID: str,
        nick: str,
        realJID: str,
        show: str | None,
        status: str | None,
    ) -> None:
        pass

    def left(self, roomJID: str, nick: str, realJID: str, status: str | None) -> None:
        self.calls.append(("left", nick))


class SlixmppClient(threading.Thread):
    """
    A slixmpp client in its own thread and asyncio loop; every stanza it
    receives lands in L{stanzas} as an ElementTree element.
    """

    def __init__(self, jid: str, password: str, port: int) -> None:
        super().__init__(daemon=True)
        self.jid, self.password, self.port = jid, password, port
        self.stanzas: queue.Queue[ET.Element] = queue.Queue()
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.xmpp: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            import slixmpp
            from slixmpp.xmlstream.handler import Callback
            from slixmpp.xmlstream.matcher import MatchXPath

            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            xmpp = slixmpp.ClientXMPP(
                self.jid,
                self.password,
                plugin_config={
                    "feature_mechanisms": {
                        "unencrypted_plain": True,
                        "unencrypted_scram": True,
                    }
                },
            )
            xmpp.enable_starttls = False
            xmpp.enable_direct_tls = False
            xmpp.enable_plaintext = True
            for name in ("presence", "message", "iq"):
                xmpp.register_handler(
                    Callback(f"raw {name}", MatchXPath(f"{C}{name}"), self._received)
                )
            xmpp.add_event_handler("session_start", lambda _: self.ready.set())
            self.xmpp = xmpp
            xmpp.connect(host="127.0.0.1", port=self.port)
            self.loop.run_forever()
            pending = asyncio.all_tasks(self.loop)
            for pendingTask in pending:
                pendingTask.cancel()
            self.loop.run_until_complete(
                asyncio.gather(*pending, return_exceptions=True)
            )
            self.loop.close()
        except BaseException as e:  # reported to the test
            self.error = e
            self.ready.set()

    def _received(self, stanza: Any) -> None:
        # the element itself: str(stanza) drops the default namespace
        self.stanzas.put(copy.deepcopy(stanza.xml))

    def sendRaw(self, text: str) -> None:
        """
        Send raw XML from the client's loop.
        """
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.xmpp.send_raw, text)

    def stop(self, timeout: float = 5.0) -> None:
        """
        Disconnect and end the thread (bounded).
        """
        loop = self.loop
        if loop is None or not self.is_alive():
            return

        def finish() -> None:
            self.xmpp.disconnect(wait=0)
            loop.call_later(0.5, loop.stop)

        loop.call_soon_threadsafe(finish)
        self.join(timeout)


def waitFor(
    condition: Callable[[], bool], timeout: float, what: str
) -> defer.Deferred[None]:
    """
    Poll C{condition} on the reactor every 20 ms, for at most C{timeout}
    seconds.
    """
    deadline = time.monotonic() + timeout

    @defer.inlineCallbacks
    def poll() -> Any:
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            yield task.deferLater(reactor, 0.02, lambda: None)

    d: defer.Deferred[None] = poll()
    return d


class RoomServerTestsMixin:
    """
    A slixmpp user on a real XMPP server enters, talks in and discovers a
    room hosted by the gateway's room domain.  Subclasses say which server
    (L{makeServer}); it must accept L{ROOM_DOMAIN} as a component.
    """

    timeout = 120

    def makeServer(self) -> Any:
        """
        @return: a server runner (not started) with L{ROOM_DOMAIN} among
            its components.
        """
        raise NotImplementedError()

    def setUp(self) -> Any:
        try:
            self.server = self.makeServer()
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        self.server.start()
        self.addCleanup(self.server.stop)
        self.server.register("juliet", "juliet-pass")

        self.backend = AcceptingBackend()
        self.link = ComponentLink(
            reactor,
            ROOM_DOMAIN,
            "127.0.0.1",
            self.server.componentPort,
            self.server.secret,
        )
        self.service = MUCService(ROOM_DOMAIN, self.backend, reactor)
        self.service.setHandlerParent(self.link.streamManager)
        for handler in discoHandlers(RoomDisco(self.service)):
            handler.setHandlerParent(self.link.streamManager)
        self.room = Room(
            ROOM, "sip:montague@chat.sip.example", RoomSettings(name="Montague")
        )
        self.room.join(Participant("Romeo"))
        self.room.join(Participant("Mercutio"))
        self.stamps = [OLD + timedelta(minutes=n) for n in range(3)]
        for n, stamp in enumerate(self.stamps):
            self.room.record(
                HistoryEntry("Romeo", f"history {n}", stamp, messageID=f"h{n}")
            )
        self.room.setSubject(Subject("Today in Verona", "Romeo", OLD))
        self.service.createRoom(self.room)
        self.link.startService()
        self.addCleanup(self.link.stopService)

        self.client = SlixmppClient(
            f"juliet@{self.server.domain}/balcony", "juliet-pass", self.server.c2sPort
        )
        self.addCleanup(self.client.stop)
        d = waitFor(lambda: self.link.up, 15, "the component link")
        d.addCallback(lambda _: self.client.start())
        d.addCallback(
            lambda _: waitFor(self.client.ready.is_set, 20, "the client session")
        )

        def check(_: object) -> None:
            if self.client.error is not None:
                raise self.client.error

        d.addCallback(check)
        return d

    def fromRoom(self, received: list[ET.Element]) -> Callable[[], bool]:
        """
        A condition that moves stanzas from the room into C{received} and
        is true once the subject message came.
        """

        def condition() -> bool:
            while True:
                try:
                    stanza = self.client.stanzas.get_nowait()
                except queue.Empty:
                    break
                if stanza.get("from", "").startswith(ROOM):
                    received.append(stanza)
            return any(s.find(f"{C}subject") is not None for s in received)

        return condition

    @defer.inlineCallbacks
    def test_enterTalkDiscover(self) -> Any:
        """
        R-184/R-185/R-189: occupants' presences, self-presence with 110
        last, history with the model's timestamps in XEP-0203 delays, then
        the subject; R-191: a groupchat comes back with the client's id;
        XEP-0045 6.1: the room domain is conference/text.
        """
        received: list[ET.Element] = []
        self.client.sendRaw(
            f"<presence to='{ROOM}/{NICK}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        )
        yield waitFor(self.fromRoom(received), 15, "the subject message")
        kinds = [s.tag.replace(C, "") for s in received]
        self.assertEqual(
            kinds,
            ["presence"] * 3 + ["message"] * 4,
            [ET.tostring(s) for s in received],
        )
        self.assertEqual(
            [s.get("from") for s in received[:3]],
            [f"{ROOM}/Romeo", f"{ROOM}/Mercutio", f"{ROOM}/{NICK}"],
        )
        for presence in received[:2]:
            self.assertEqual(
                [st.get("code") for st in presence.iter(f"{MUC_USER}status")], []
            )
        selfPresence = received[2]
        self.assertEqual(
            [st.get("code") for st in selfPresence.iter(f"{MUC_USER}status")], ["110"]
        )
        item = selfPresence.find(f"{MUC_USER}x/{MUC_USER}item")
        assert item is not None
        self.assertEqual(
            (item.get("affiliation"), item.get("role")), ("none", "participant")
        )
        for n, message in enumerate(received[3:6]):
            self.assertEqual(message.get("from"), f"{ROOM}/Romeo")
            self.assertEqual(message.get("type"), "groupchat")
            self.assertEqual(message.findtext(f"{C}body"), f"history {n}")
            delay = message.find(f"{DELAY}delay")
            assert delay is not None
            self.assertEqual(delay.get("from"), ROOM)
            stamp = datetime.fromisoformat(delay.get("stamp", ""))
            self.assertEqual(stamp, self.stamps[n])
        subject = received[6]
        self.assertEqual(
            (subject.get("from"), subject.findtext(f"{C}subject")),
            (ROOM, "Today in Verona"),
        )
        self.assertIsNone(subject.find(f"{C}body"))
        self.assertEqual(
            self.backend.calls[0],
            ("joinRequested", ROOM, NICK, f"juliet@{self.server.domain}/balcony"),
        )

        # groupchat and its reflection with the client's id
        received.clear()
        self.client.sendRaw(
            f"<message to='{ROOM}' type='groupchat' id='lzfed24s'><body>Who knows where Romeo is?</body></message>"
        )

        def reflected() -> bool:
            self.fromRoom(received)()
            return any(s.get("id") == "lzfed24s" for s in received)

        yield waitFor(reflected, 10, "the reflection")
        reflection = [s for s in received if s.get("id") == "lzfed24s"][0]
        self.assertEqual(reflection.get("from"), f"{ROOM}/{NICK}")
        self.assertEqual(reflection.get("type"), "groupchat")
        self.assertEqual(reflection.findtext(f"{C}body"), "Who knows where Romeo is?")
        self.assertIn(
            ("messageSent", NICK, "Who knows where Romeo is?", "lzfed24s"),
            self.backend.calls,
        )

        # disco#info on the room domain
        self.client.sendRaw(
            f"<iq to='{ROOM_DOMAIN}' type='get' id='disco1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        )
        answers: list[ET.Element] = []

        def answered() -> bool:
            while True:
                try:
                    stanza = self.client.stanzas.get_nowait()
                except queue.Empty:
                    break
                if stanza.tag == f"{C}iq" and stanza.get("id") == "disco1":
                    answers.append(stanza)
            return bool(answers)

        yield waitFor(answered, 10, "the disco#info answer")
        self.assertEqual(answers[0].get("type"), "result")
        info = "{http://jabber.org/protocol/disco#info}"
        identities = [
            (i.get("category"), i.get("type"))
            for i in answers[0].iter(f"{info}identity")
        ]
        self.assertEqual(identities, [("conference", "text")])
        features = [f.get("var") for f in answers[0].iter(f"{info}feature")]
        self.assertIn("http://jabber.org/protocol/muc", features)


class ProsodyRoomTests(RoomServerTestsMixin, TestCase):
    """
    Against Prosody 0.12.
    """

    def makeServer(self) -> Prosody:
        return Prosody(components=(ROOM_DOMAIN,), directory=self.mktemp())


class EjabberdRoomTests(RoomServerTestsMixin, TestCase):
    """
    Against ejabberd 23.01.
    """

    def makeServer(self) -> Ejabberd:
        return Ejabberd(components=(ROOM_DOMAIN,), directory=self.mktemp())
