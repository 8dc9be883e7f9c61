"""
Fuzz the stanza handlers of the room domain (RFC 7702 section 5, "Gateway
A"): L{stoxgw.xmpp.room.MUCService} (XEP-0045 joins, presence updates, nick
changes, leaves, groupchat and private messages, chat states, invitations
and declines, IQs to rooms and occupants) with the XEP-0030 handlers of
L{stoxgw.xmpp.disco}, on a room that has two participants, history and a
subject, one XMPP user already in it.  What an XMPP user anywhere can send
reaches these handlers.

Input: XML stanzas, as they come on the component stream (default
namespace C{jabber:component:accept}); parsed with Twisted's domish (the
parser of the stream), and each top-level element dispatched as the stream
would.  Input that is not well-formed is rejected (the stream would be
closed: not this code's business), and so are stanzas the XMPP server
would not route to the component (RFC 6120 sections 8.1.1, 8.1.2, 13.7.1.4
and XEP-0114): without a C{from} and a C{to} that are valid JIDs, or with a
C{to} outside the component's domain.

Nothing may escape the handlers, and nothing may end in their catch-alls:
a failure logged anywhere (the service's C{log.failure}, an observer error
logged by the dispatcher, an unhandled error in a Deferred) is a crash.
Every stanza sent in answer must serialize to XML that parses.

Seeds: XEP-0045 examples as C{tests/xmpp/test_room.py} uses them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import atheris

from _harness import knownIssue, main, routedTo

with atheris.instrument_imports(include=["stoxgw"]):
    import stoxgw.xmpp  # noqa: F401
    from stoxgw.rooms.model import HistoryEntry, Participant, Room, RoomSettings, Subject
    from stoxgw.xmpp.disco import RoomDisco, discoHandlers
    from stoxgw.xmpp.room import MUCService

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.words.xish import domish
from wokkel.generic import parseXml

from tests.xmpp.test_room import RecordingBackend, connect

DOMAIN = "chat.shakespeare.lit"
ROOM = "coven@chat.shakespeare.lit"
HAG = "hag66@shakespeare.lit/pda"
CRONE = "crone1@shakespeare.lit/desktop"
NOW = datetime(2015, 10, 15, 18, 30, 0, tzinfo=timezone.utc)
T1 = datetime(2002, 10, 13, 23, 58, 37, tzinfo=timezone.utc)
MUC = "http://jabber.org/protocol/muc"
MUC_USER = "http://jabber.org/protocol/muc#user"


class Failures:
    """
    Collects the failures logged while one input runs.
    """

    def __init__(self) -> None:
        self.failures: list[Any] = []

    def __call__(self, event: dict[str, Any]) -> None:
        failure = event.get("log_failure")
        if failure is not None and not knownIssue(failure):
            self.failures.append(failure)


def world() -> tuple[Any, Clock]:
    """
    A service with the coven room, HAG in it.
    """
    clock = Clock()
    clock.advance(NOW.timestamp())
    ids = iter(range(1, 10**9))
    service = MUCService(DOMAIN, RecordingBackend(), clock, idFactory=lambda: f"id{next(ids)}")
    manager, stub = connect(service, *discoHandlers(RoomDisco(service)))
    room = Room(ROOM, "sip:coven@chat.shakespeare.lit", RoomSettings(name="A Dark Cave"))
    room.join(Participant("firstwitch"))
    room.join(Participant("secondwitch", realAddress="wiccarocks@shakespeare.lit/laptop"))
    for n in range(3):
        room.record(
            HistoryEntry(
                "firstwitch",
                f"Thrice the brinded cat hath mew'd {n}.",
                T1 + timedelta(minutes=n),
                messageID=f"h{n}",
            )
        )
    room.setSubject(Subject("Fire Burn and Cauldron Bubble!", "secondwitch", T1))
    service.createRoom(room)
    service.createRoom(Room("hidden@" + DOMAIN, settings=RoomSettings(public=False)))
    stub.send(
        parseXml(
            f"<presence from='{HAG}' id='n13mt3l' to='{ROOM}/thirdwitch'>"
            f"<x xmlns='{MUC}'/></presence>"
        )
    )
    return (manager, stub), clock


def testOneInput(data: bytes) -> None:
    """
    Dispatch the stanzas in C{data}; then let time pass.
    """
    try:
        root = parseXml(b"<stream xmlns='jabber:component:accept'>" + data + b"</stream>")
    except Exception:
        # Not well-formed (domish raises its own and expat's errors).
        return
    if root is None:
        # Ended inside a processing instruction or comment.
        return
    failures = Failures()
    globalLogPublisher.addObserver(failures)
    try:
        (manager, stub), clock = world()
        before = len(manager.output)
        for stanza in list(root.elements()):
            if routedTo(stanza, DOMAIN):
                stanza.parent = None
                stub.send(stanza)
        clock.advance(3600)
    finally:
        globalLogPublisher.removeObserver(failures)
    for failure in failures.failures:
        failure.raiseException()
    for stanza in manager.output[before:]:
        assert isinstance(stanza, domish.Element), stanza
        parseXml(stanza.toXml().encode("utf-8"))


def seeds() -> list[bytes]:
    """
    XEP-0045 stanzas to the room, its occupants and the service.
    """
    stanzas = [
        f"<presence from='{CRONE}' id='j1' to='{ROOM}/crone'><x xmlns='{MUC}'>"
        f"<history maxstanzas='2'/><password>pw</password></x></presence>",
        f"<presence from='{CRONE}' to='{ROOM}/thirdwitch'><x xmlns='{MUC}'/></presence>",
        f"<presence from='{HAG}' to='{ROOM}/oldhag'/>",
        f"<presence from='{HAG}' to='{ROOM}/thirdwitch'><show>xa</show>"
        f"<status>gone where the goblins go</status></presence>",
        f"<presence from='{HAG}' to='{ROOM}/thirdwitch' type='unavailable'>"
        f"<status>bye</status></presence>",
        f"<message from='{HAG}' id='lzfed24s' to='{ROOM}' type='groupchat'>"
        f"<body>Harpier cries: 'tis time, 'tis time.</body></message>",
        f"<message from='{HAG}' id='p1' to='{ROOM}/firstwitch' type='chat'>"
        f"<body>I'll give thee a wind.</body><x xmlns='{MUC_USER}'/></message>",
        f"<message from='{HAG}' to='{ROOM}' type='groupchat'>"
        f"<composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        f"<message from='{HAG}' id='s1' to='{ROOM}' type='groupchat'>"
        f"<subject>Fire Burn</subject></message>",
        f"<message from='{HAG}' id='i1' to='{ROOM}'><x xmlns='{MUC_USER}'>"
        f"<invite to='hecate@shakespeare.lit'><reason>Hey Hecate</reason></invite>"
        f"</x></message>",
        f"<message from='hecate@shakespeare.lit/broom' to='{ROOM}'><x xmlns='{MUC_USER}'>"
        f"<decline to='{HAG}'><reason>Sorry, I'm too busy right now.</reason></decline>"
        f"</x></message>",
        f"<iq from='{HAG}' id='d1' to='{ROOM}' type='get'>"
        f"<query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        f"<iq from='{HAG}' id='d2' to='{DOMAIN}' type='get'>"
        f"<query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
        f"<iq from='{HAG}' id='v1' to='{ROOM}/firstwitch' type='get'>"
        f"<query xmlns='jabber:iq:version'/></iq>",
        f"<iq from='{HAG}' id='p1' to='{ROOM}/thirdwitch' type='get'>"
        f"<ping xmlns='urn:xmpp:ping'/></iq>",
        f"<iq from='{HAG}' id='o1' to='{ROOM}' type='set'>"
        f"<query xmlns='http://jabber.org/protocol/muc#owner'>"
        f"<x xmlns='jabber:x:data' type='submit'/></query></iq>",
        f"<message from='{HAG}' id='e1' to='{ROOM}' type='error'>"
        f"<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        f"</error></message>",
    ]
    result = [stanza.encode("utf-8") for stanza in stanzas]
    result.append("".join(stanzas[:8]).encode("utf-8"))
    return result


if __name__ == "__main__":
    main(testOneInput, seeds)
