# -*- test-case-name: tests.test_bench -*-
"""
W1's load generator (bench/README.md): 2 SIP users and 2 XMPP users in one
room of a real Prosody, through a gateway running in another process;
messages one in flight, each way.

Run by C{bench/w1.py} in a process of its own.  The XMPP users are minimal
raw c2s clients (SASL PLAIN, bind, MUC join) that send pre-built stanza
bytes and spot arrivals by their C{<body>} text; the SIP users are the
project's own UA, MSRP endpoint and L{ChatInitiator}, sending pre-built
CPIM bodies.  Every timestamp comes from this one process's monotonic
clock, so latencies of different paths are comparable.

Prints one JSON object on stdout: per-message latencies in seconds,
C{x2x} (XMPP sender to the other XMPP user: Prosody alone, P_x),
C{x2s} (XMPP sender to the slower of the 2 SIP users, through the gateway),
C{s2x} (SIP sender to the slower of the 2 XMPP users),
C{s2s} (SIP sender to the other SIP user).
"""

from __future__ import annotations

import argparse
import base64
import re
import socket
import time
from typing import Any, Callable

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory, Protocol

from stoxgw.chat.session import ChatInitiator
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.sip.transport import SIPTransport
from stoxgw.sip.uri import SIPURI, parseNameAddr
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings

from common import runClient

_BODY = re.compile(rb"<body>([A-Za-z0-9]+)</body>")
_TAG = re.compile(rb"\b(w1[a-z][0-9]+)\b")


class RawXMPPUser(Protocol):
    """
    A minimal XMPP client over plain TCP: logs in with SASL PLAIN, binds,
    joins the room, then reports the C{<body>} of every stanza it gets.
    """

    def __init__(self, user: str, password: str, domain: str, room: str, nick: str) -> None:
        self.user, self.password, self.domain = user, password, domain
        self.room, self.nick = room, nick
        self.buffer = b""
        self.step = "features1"
        self.joined: defer.Deferred[None] = defer.Deferred()
        self.onBody: Callable[[bytes, float], None] = lambda tag, t: None

    def _header(self) -> bytes:
        return (
            f"<?xml version='1.0'?><stream:stream to='{self.domain}' xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        ).encode()

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)  # type: ignore[attr-defined]
        self.sock = self.transport.getHandle()  # type: ignore[union-attr]
        self.transport.write(self._header())  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        now = time.monotonic()
        # An ideal client: ACK at once (re-armed after every read), so that
        # Prosody's Nagle (on by default) never waits for this client's
        # delayed ACKs and the XMPP -> XMPP baseline (P_x) is not stalled
        # by the load generator itself.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        if self.step == "ready":
            for m in _BODY.finditer(data):
                self.onBody(m.group(1), now)
            return
        self.buffer += data
        b = self.buffer
        if self.step == "features1" and b"</stream:features>" in b:
            self.buffer = b""
            token = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
            self.transport.write(  # type: ignore[union-attr]
                f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>".encode()
            )
            self.step = "auth"
        elif self.step == "auth" and b"<success" in b:
            self.buffer = b""
            self.transport.write(self._header())  # type: ignore[union-attr]
            self.step = "features2"
        elif self.step == "auth" and b"<failure" in b:
            raise SystemExit(f"XMPP login failed for {self.user}: {b!r}")
        elif self.step == "features2" and b"</stream:features>" in b:
            self.buffer = b""
            self.transport.write(  # type: ignore[union-attr]
                b"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                b"<resource>bench</resource></bind></iq>"
            )
            self.step = "bind"
        elif self.step == "bind" and b"bind1" in b and b"</iq>" in b:
            self.buffer = b""
            self.transport.write(  # type: ignore[union-attr]
                f"<presence to='{self.room}/{self.nick}'><x xmlns='http://jabber.org/protocol/muc'>"
                "<history maxstanzas='0'/></x></presence>".encode()
            )
            self.step = "join"
        elif self.step == "join" and b"status code='110'" in b.replace(b'"', b"'"):
            self.buffer = b""
            self.step = "ready"
            self.joined.callback(None)

    def groupchat(self, tag: str) -> bytes:
        """
        @return: the pre-built bytes of a groupchat message with body C{tag}.
        """
        return (
            f"<message to='{self.room}' type='groupchat' id='{tag}'><body>{tag}</body></message>"
        ).encode()


class SIPBenchUser:
    """
    A chat handler that reports the tag of every message it receives.
    """

    def __init__(self) -> None:
        self.onBody: Callable[[bytes, float], None] = lambda tag, t: None

    def chatStarted(self, session: Any) -> None:
        pass

    def messageReceived(self, session: Any, message: Any) -> Any:
        now = time.monotonic()
        m = _TAG.search(message.body)
        if m:
            self.onBody(m.group(1), now)
        return None

    def nicknameRequested(self, session: Any, nickname: str) -> Any:
        return 403

    def chatEnded(self, session: Any, reason: Any) -> None:
        pass


def bounded(d: defer.Deferred[Any], seconds: float) -> defer.Deferred[Any]:
    return d.addTimeout(seconds, reactor)  # type: ignore[arg-type]


@defer.inlineCallbacks
def main(options: argparse.Namespace) -> Any:
    room = options.room
    xmpp: list[RawXMPPUser] = []
    for user, nick in (("xa", "XA"), ("xb", "XB")):
        proto = RawXMPPUser(user, f"{user}pass", options.domain, room, nick)
        factory = ClientFactory.forProtocol(lambda p=proto: p)  # type: ignore[misc]
        factory.buildProtocol = lambda addr, p=proto: p  # type: ignore[method-assign]
        reactor.connectTCP("127.0.0.1", options.c2s_port, factory)  # type: ignore[attr-defined]
        yield bounded(proto.joined, 15)
        xmpp.append(proto)

    transport = SIPTransport(reactor, "127.0.0.1")  # type: ignore[arg-type]
    transport.listenTCP(0)
    proxy = SIPURI(
        "sip", "127.0.0.1", port=options.sip_port, parameters=(("transport", "tcp"), ("lr", None))
    )
    ua = SIPUserAgent(
        reactor,  # type: ignore[arg-type]
        transport,
        settings=UserAgentSettings(outboundProxy=proxy),
        admission=SIPTrust.fromStrings(["127.0.0.1"]),
    )
    endpoint = MSRPEndpoint(reactor, "127.0.0.1", 0, transactionTimeout=10)  # type: ignore[arg-type]
    endpoint.startListening()
    initiator = ChatInitiator(ua, endpoint, reactor)  # type: ignore[arg-type]
    roomURI = SIPURI.fromString(f"sip:{room}")
    sip: list[tuple[SIPBenchUser, Any]] = []
    for name in ("romeo", "juliet"):
        handler = SIPBenchUser()
        session = yield bounded(
            initiator.startChat(
                roomURI,
                parseNameAddr(f'"{name.title()}" <sip:{name}@example.org>;tag={name}1'),
                handler,
                acceptTypes=("message/cpim",),
                acceptWrappedTypes=("text/plain",),
                chatroom=("nickname", "private-messages"),
            ),
            20,
        )
        sip.append((handler, session))

    arrivals: dict[bytes, dict[str, float]] = {}
    waiting: dict[str, Any] = {"tag": None, "need": set(), "done": None}

    def arrived(who: str) -> Callable[[bytes, float], None]:
        def record(tag: bytes, t: float) -> None:
            arrivals.setdefault(tag, {})[who] = t
            if tag == waiting["tag"] and who in waiting["need"]:
                waiting["need"].discard(who)
                if not waiting["need"] and not waiting["done"].called:
                    waiting["done"].callback(None)

        return record

    xmpp[0].onBody = arrived("XA")
    xmpp[1].onBody = arrived("XB")
    sip[0][0].onBody = arrived("romeo")
    sip[1][0].onBody = arrived("juliet")

    # Pre-built payloads.
    n = options.messages
    xTags = [f"w1x{i}".encode() for i in range(n)]
    sTags = [f"w1s{i}".encode() for i in range(n)]
    xPayloads = [xmpp[0].groupchat(t.decode()) for t in xTags]
    sPayloads = [
        CPIMMessage.build(
            contentType="text/plain;charset=UTF-8",
            body=t,
            fromAddress=CPIMAddress("sip:romeo@example.org", "Romeo"),
            toAddresses=(CPIMAddress(f"sip:{room}"),),
        ).toBytes()
        for t in sTags
    ]
    # Let joins and their presences settle.
    yield deferLater(0.5)

    result: dict[str, list[float]] = {"x2x": [], "x2s": [], "s2x": [], "s2s": []}
    lost = 0
    for i in range(n):
        for direction in ("x", "s"):
            tag = (xTags if direction == "x" else sTags)[i]
            need = {"XB", "romeo", "juliet"} if direction == "x" else {"XA", "XB", "juliet"}
            waiting.update(tag=tag, need=set(need), done=defer.Deferred())
            t0 = time.monotonic()
            if direction == "x":
                xmpp[0].transport.write(xPayloads[i])  # type: ignore[union-attr]
            else:
                sip[0][1].sendMessage("message/cpim", sPayloads[i])
            try:
                yield bounded(waiting["done"], 5)
            except defer.TimeoutError:
                lost += 1
                continue
            got = arrivals.pop(tag)
            if direction == "x":
                result["x2x"].append(got["XB"] - t0)
                result["x2s"].append(max(got["romeo"], got["juliet"]) - t0)
            else:
                result["s2x"].append(max(got["XA"], got["XB"]) - t0)
                result["s2s"].append(got["juliet"] - t0)
    for _, session in sip:
        session.end()
    yield deferLater(0.3)
    return {"latencies": result, "lost": lost}


def deferLater(seconds: float) -> defer.Deferred[None]:
    d: defer.Deferred[None] = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)  # type: ignore[attr-defined]
    return d


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--c2s-port", type=int, required=True)
    parser.add_argument("--sip-port", type=int, required=True)
    parser.add_argument("--domain", default="xmpp.test")
    parser.add_argument("--room", default="bench@muc.xmpp.test")
    parser.add_argument("--messages", type=int, default=200)
    options = parser.parse_args()
    runClient(lambda: main(options))

if __name__ == "__main__":
    run()
