"""
Fuzz the stanza handlers of the user domain (RFC 7702 section 6, "Gateway
B"): L{stoxgw.xmpp.occupant.OccupantService}, the SIP users' MUC occupants,
over a real L{ComponentLink} stream: room presences (joins with 110/201/210,
roster, nick changes 303, kicks, bans, shutdown, destruction, entry errors),
subjects, history with delay stamps, groupchat and private messages,
reflections, message errors, invitations and declines, chat states, pings
and disco queries.  Any MUC service on the XMPP network can send these.

The state each input meets: HAG in the room (joined, with a roster and a
groupchat message waiting for its reflection), CRONE joining it, WICCA's
nick change pending.

Input: XML stanzas as they come on the component stream; parsed with
domish, each top-level stanza the XMPP server would route to the component
(valid C{from} and C{to} JIDs, C{to} on its domain: RFC 6120 sections 8.1.1,
8.1.2, XEP-0114) dispatched on the link's stream; then 60 seconds pass (the
join, nick, reflection and ping timeouts).

Nothing may escape the handlers or end in a catch-all: a failure logged
anywhere (an observer error logged by the dispatcher, C{log.failure}, an
unhandled error in a Deferred) is a crash.  Every stanza sent must
serialize to XML that parses.

Seeds: the XEP-0045 examples of C{tests/xmpp/test_occupant.py}.
"""

from __future__ import annotations

from typing import Any

import atheris

from _harness import knownIssue, main, routedTo

with atheris.instrument_imports(include=["stoxgw"]):
    import stoxgw.xmpp  # noqa: F401
    from stoxgw.xmpp.component import ComponentLink
    from stoxgw.xmpp.occupant import OccupantService

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import globalLogPublisher
from twisted.words.protocols.jabber.jid import JID
from wokkel.generic import parseXml

from tests.xmpp.test_occupant import SERVER_HEADER, RecordingHandler

DOMAIN = "shakespeare.lit"
ROOM = JID("darkcave@macbeth.shakespeare.lit")
HAG = JID("hag66@shakespeare.lit/pda")
WICCA = JID("wiccarocks@shakespeare.lit/laptop")
CRONE = JID("crone1@shakespeare.lit/desktop")
MUC_USER = "http://jabber.org/protocol/muc#user"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def presence(nick: str, to: JID, items: str, presenceType: str | None = None) -> bytes:
    """
    A room presence with a muc#user C{<x/>}.
    """
    typeAttribute = f" type='{presenceType}'" if presenceType else ""
    return (
        f"<presence from='{ROOM.full()}/{nick}' to='{to.full()}'{typeAttribute}>"
        f"<x xmlns='{MUC_USER}'>{items}</x></presence>"
    ).encode()


SELF = "<item affiliation='member' role='participant'/><status code='110'/>"


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


def ignore(result: object) -> None:
    """
    The harness does not care how its own operations end.
    """


def world() -> tuple[Any, MemoryReactorClock, StringTransport]:
    """
    A link up, HAG and WICCA in the room, CRONE joining, a nick change
    and a reflection pending.
    """
    reactor = MemoryReactorClock()
    link = ComponentLink(
        reactor, DOMAIN, "127.0.0.1", 5347, "secret", queueSize=10, maxDelay=60.0,
        jitter=lambda: 0.0,
    )
    ids = iter(f"id{n}" for n in range(1, 10**9))
    service = OccupantService(
        RecordingHandler(), reactor, DOMAIN, instantRooms=True, timeout=30.0,
        reflectionTimeout=10.0, idFactory=lambda: next(ids),
    )
    service.attach(link)
    link.startService()
    _, _, factory, *_ = reactor.tcpClients[-1]
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(SERVER_HEADER)
    protocol.dataReceived(b"<handshake/>")
    service.join(ROOM, "thirdwitch", HAG).addBoth(ignore)
    protocol.dataReceived(
        presence("firstwitch", HAG, "<item affiliation='owner' role='moderator'/>")
        + presence("thirdwitch", HAG, SELF)
    )
    service.join(ROOM, "oldwicca", WICCA).addBoth(ignore)
    protocol.dataReceived(presence("oldwicca", WICCA, SELF))
    service.changeNick(ROOM, WICCA, "wicca").addBoth(ignore)
    service.join(ROOM, "crone", CRONE).addBoth(ignore)
    service.sendGroupchat(ROOM, HAG, "Harpier cries", stanzaID="m1").addBoth(ignore)
    transport.clear()
    stream = link.streamManager.xmlstream
    assert stream is not None
    return stream, reactor, transport


def testOneInput(data: bytes) -> None:
    """
    Dispatch the stanzas in C{data}; then let the timeouts pass.
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
        stream, reactor, transport = world()
        for stanza in list(root.elements()):
            if routedTo(stanza, DOMAIN):
                stanza.parent = None
                stream.dispatch(stanza)
        reactor.advance(60)
    finally:
        globalLogPublisher.removeObserver(failures)
    for failure in failures.failures:
        failure.raiseException()
    parseXml(b"<stream xmlns='jabber:component:accept'>" + transport.value() + b"</stream>")


def seeds() -> list[bytes]:
    """
    XEP-0045 stanzas from the room to the occupants.
    """
    room = ROOM.full()
    hag = HAG.full()
    stanzas = [
        presence("secondwitch", HAG, "<item affiliation='admin' role='moderator'/>"),
        presence("crone", CRONE, "<item affiliation='owner' role='moderator'/>"
                 "<status code='110'/><status code='201'/>"),
        presence("crone", CRONE, SELF + "<status code='210'/>"),
        presence("wicca", WICCA, "<item affiliation='member' role='participant'/>"
                 "<status code='110'/>"),
        presence("oldwicca", WICCA, "<item affiliation='member' nick='wicca' role='participant'/>"
                 "<status code='303'/><status code='110'/>", "unavailable"),
        presence("firstwitch", HAG, "<item affiliation='none' role='none'/><status code='307'/>",
                 "unavailable"),
        presence("thirdwitch", HAG, "<item affiliation='outcast' role='none'/>"
                 "<status code='301'/><status code='110'/>", "unavailable"),
        presence("thirdwitch", HAG, "<item affiliation='none' role='none'/>"
                 "<destroy jid='coven@chat.shakespeare.lit'><reason>Macbeth doth come.</reason>"
                 "</destroy><status code='110'/>", "unavailable"),
        presence("thirdwitch", HAG, "<item affiliation='none' role='none'/><status code='110'/>"
                 "<status code='307'/><status code='333'/>", "unavailable"),
        f"<presence from='{room}/crone' to='{CRONE.full()}' type='error'>"
        f"<error code='409' type='cancel'><conflict xmlns='{STANZAS}'/></error></presence>".encode(),
        f"<presence from='{room}/crone' to='{CRONE.full()}' type='error'>"
        f"<error type='auth'><registration-required xmlns='{STANZAS}'/></error></presence>".encode(),
        f"<message from='{room}/thirdwitch' to='{hag}' type='groupchat' id='m1'>"
        f"<body>Harpier cries</body></message>".encode(),
        f"<message from='{room}/firstwitch' to='{hag}' type='groupchat'>"
        f"<body>Thrice the brinded cat hath mew'd.</body>"
        f"<delay xmlns='urn:xmpp:delay' from='crone1@shakespeare.lit/desktop' "
        f"stamp='2002-10-13T23:58:37Z'/></message>".encode(),
        f"<message from='{room}' to='{hag}' type='groupchat'><subject>Fire Burn</subject>"
        f"</message>".encode(),
        f"<message from='{room}' to='{hag}' type='error' id='m1'><body>Harpier cries</body>"
        f"<error code='403' type='auth'><forbidden xmlns='{STANZAS}'/></error></message>".encode(),
        f"<message from='{room}/secondwitch' to='{hag}' type='chat'>"
        f"<body>I'll give thee a wind.</body><x xmlns='{MUC_USER}'/></message>".encode(),
        f"<message from='{room}' to='{hag}'><x xmlns='{MUC_USER}'>"
        f"<invite from='crone1@shakespeare.lit/desktop'><reason>Hey</reason></invite>"
        f"<password>cauldronburn</password></x></message>".encode(),
        f"<message from='crone1@shakespeare.lit/desktop' to='{hag}'>"
        f"<x xmlns='jabber:x:conference' jid='{room}' reason='Hey'/></message>".encode(),
        f"<message from='{room}' to='{hag}'><x xmlns='{MUC_USER}'>"
        f"<decline from='hecate@shakespeare.lit'><reason>Sorry</reason></decline></x>"
        f"</message>".encode(),
        f"<message from='{room}/firstwitch' to='{hag}' type='groupchat'>"
        f"<composing xmlns='http://jabber.org/protocol/chatstates'/></message>".encode(),
        f"<iq from='{room}/firstwitch' to='{hag}' id='p1' type='get'>"
        f"<ping xmlns='urn:xmpp:ping'/></iq>".encode(),
        f"<iq from='{room}/firstwitch' to='{hag}' id='d1' type='get'>"
        f"<query xmlns='http://jabber.org/protocol/disco#info'/></iq>".encode(),
        f"<iq from='{room}' to='{CRONE.full()}' id='id5' type='result'/>".encode(),
    ]
    return stanzas + [b"".join(stanzas[:6]), b"".join(stanzas[6:12])]


if __name__ == "__main__":
    main(testOneInput, seeds)
