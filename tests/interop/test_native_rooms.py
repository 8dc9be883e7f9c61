# -*- test-case-name: tests.interop.test_native_rooms -*-
"""
Interop: chat rooms the gateway hosts itself (C{[rooms]}, RFC 7701,
docs/native-rooms.md), over real sockets on 127.0.0.1, with real peers.

The gateway runs in this process (L{makeService} from a configuration
file, on the real reactor) with Prosody as its XMPP server; its native
rooms' domain is also its XMPP room domain (C{chat.sip.xmpp.test}), so an
XMPP user (slixmpp) reaches C{sip:lounge@chat.sip.xmpp.test} as the MUC
room C{lounge@chat.sip.xmpp.test}: the gateway INVITEs its own room.

SIP users:
  - the project's UA, MSRP endpoint and L{ChatInitiator} in this process,
    through Kamailio as record-routing SIP proxy (and, in
    L{ThroughKamailioRelayTests}, through Kamailio as MSRP relay, RFC 4976:
    Kamailio 5.6 delivers only to clients that AUTHed with it, so the
    gateway uses the relay too; it answers NICKNAME with 501 itself, since
    it relays only SEND and REPORT, PEERS.md);
  - the C{stoxgw-chat} client in a child process;
  - SIPp (C{uac_native_room.xml}): its SIP side (INVITE, ACK, a conference
    fetch inside the INVITE dialog, BYE); SIPp has no MSRP, so this test
    plays its MSRP side with hand-written bytes (L{RawMSRP});
  - pjsua2, which has no MSRP: its audio INVITE to the room gets 488, and
    the room's dial-out INVITE to it (after a REFER) gets its 488.

Every wait is bounded; each test starts and stops its own peers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Generator, Mapping
from typing import Any

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase
from zope.interface import implementer

from stoxgw.chat.session import (
    ChatEnd,
    ChatInitiator,
    ChatSession,
    ChatSessionError,
    IChatSessionHandler,
)
from stoxgw.config import loadConfig
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.msrp.session import IncomingMessage, MSRPSendError
from stoxgw.service import GatewayService, makeService
from stoxgw.sip.refer import ReferAgent
from stoxgw.sip.subscription import SIPEvents
from stoxgw.sip.transport import SIPTransport
from stoxgw.sip.uri import NameAddr, SIPURI, parseNameAddr
from stoxgw.sip.useragent import SIPError, SIPTrust, SIPUserAgent, UserAgentSettings
from tests.interop.gateway import TOP
from tests.interop.kamailio import KamailioMSRPRelay
from tests.interop.msrpendpoints import startEndpoint
from tests.interop.peers import PeerUnavailable, Prosody, freePort, freeUDPAndTCPPort
from tests.interop.sipp import SIPpResult, runSIPp
from tests.interop.test_occupant_servers import bounded, until
from tests.interop.test_siptoxmpp_servers import RoomRoutingProxy, RoomWatcher

USER_DOMAIN = "sip.xmpp.test"
ROOM_DOMAIN = "chat.sip.xmpp.test"
LOUNGE = f"lounge@{ROOM_DOMAIN}"
LOUNGE_URI = f"sip:{LOUNGE}"
SUBJECT = "The Capulets' orchard"
MSRP_IP = "127.0.0.1"


def nativeConfig(
    server: Prosody,
    sipPort: int,
    msrpPort: int,
    rooms: Mapping[str, str],
    msrp: Mapping[str, str] = {},
) -> str:
    """
    The gateway's configuration: SIP on 127.0.0.1 UDP and TCP C{sipPort}
    trusting 127.0.0.1, MSRP on C{msrpPort}, both XMPP domains as
    components of C{server}, and C{[rooms]} on the room domain.
    """
    extra = "".join(f"{key} = {value}\n" for key, value in rooms.items())
    extraMSRP = "".join(f"{key} = {value}\n" for key, value in msrp.items())
    return (
        "[gateway]\n"
        f"muc_domains = {server.mucDomain}\n"
        "[sip]\n"
        "local_ip = 127.0.0.1\n"
        f"udp_port = {sipPort}\n"
        f"tcp_port = {sipPort}\n"
        "trusted_peers = 127.0.0.1/32\n"
        "[msrp]\n"
        f"local_ip = {MSRP_IP}\n"
        f"port = {msrpPort}\n"
        "transaction_timeout = 10\n"
        f"{extraMSRP}"
        "[xmpp]\n"
        "server = 127.0.0.1\n"
        f"port = {server.componentPort}\n"
        f"user_domain = {USER_DOMAIN}\n"
        f"room_domain = {ROOM_DOMAIN}\n"
        f"secret = {server.secret}\n"
        "reconnect_max_delay = 2\n"
        "[rooms]\n"
        f"domain = {ROOM_DOMAIN}\n"
        f"persistent_rooms = lounge {SUBJECT}\n"
        f"{extra}"
    )


@implementer(IChatSessionHandler)
class InProcessUser:
    """
    A SIP user made of the project's UA, MSRP endpoint and chat initiator
    in this process; keeps what it receives.

    @ivar messages: The CPIM messages received, in order.
    @ivar endings: How its sessions ended.
    """

    def __init__(
        self,
        test: TestCase,
        name: str,
        proxy: SIPURI,
        relay: KamailioMSRPRelay | None = None,
    ) -> None:
        self.name = name
        self.aor = f"sip:{name}@montague.example"
        transport = SIPTransport(reactor, "127.0.0.1")  # type: ignore[arg-type]
        transport.listenTCP(0)
        test.addCleanup(transport.stopListening)
        self.ua = SIPUserAgent(
            reactor,  # type: ignore[arg-type]
            transport,
            settings=UserAgentSettings(outboundProxy=proxy, contactUser=name),
            admission=SIPTrust.fromStrings(["127.0.0.1"]),
        )
        test.addCleanup(self.ua.close)
        options: dict[str, Any] = {}
        if relay is not None:
            options = {
                "relay": relay.relayURI,
                "relayUsername": name,
                "relayPassword": f"{name}pass",
            }
        self.endpoint = startEndpoint(test, transactionTimeout=10, **options)
        self.initiator = ChatInitiator(self.ua, self.endpoint, reactor)  # type: ignore[arg-type]
        self.events = SIPEvents(self.ua)
        self.refers = ReferAgent(self.events)
        self.messages: list[CPIMMessage] = []
        self.endings: list[ChatEnd] = []
        self.session: ChatSession | None = None

    def join(
        self,
        room: str = LOUNGE_URI,
        chatroom: tuple[str, ...] = ("nickname", "private-messages"),
    ) -> defer.Deferred[ChatSession]:
        """
        INVITE the room (RFC 7701 section 5.2).
        """
        d = self.initiator.startChat(
            SIPURI.fromString(room),
            parseNameAddr(f'"{self.name.title()}" <{self.aor}>'),
            self,
            acceptTypes=("message/cpim",),
            acceptWrappedTypes=("text/plain",),
            chatroom=chatroom,
        )

        def joined(session: ChatSession) -> ChatSession:
            self.session = session
            return session

        return bounded(d, 20).addCallback(joined)

    def say(
        self, text: str, to: tuple[str, ...] = (LOUNGE_URI,), sender: str | None = None
    ) -> defer.Deferred[Any]:
        """
        A CPIM SEND (RFC 7701 section 6.1).
        """
        assert self.session is not None
        body = CPIMMessage.build(
            contentType="text/plain; charset=utf-8",
            body=text.encode("utf-8"),
            fromAddress=CPIMAddress(sender or self.aor),
            toAddresses=[CPIMAddress(t) for t in to],
        ).toBytes()
        return bounded(self.session.sendMessage("message/cpim", body), 15)

    def heard(self) -> list[tuple[str, str, str]]:
        """
        (CPIM From, CPIM To, text) of every message received.
        """
        return [
            (
                m.fromAddress.uri if m.fromAddress else "",
                m.toAddresses[0].uri,
                m.body.decode(),
            )
            for m in self.messages
        ]

    # -- IChatSessionHandler --

    def chatStarted(self, session: ChatSession) -> None:
        """
        Nothing to do.
        """
        pass

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        """
        Keep the CPIM message.
        """
        self.messages.append(CPIMMessage.parse(message.body))
        return 200

    def nicknameRequested(self, session: ChatSession, nickname: str) -> Any:
        """
        Only a focus takes NICKNAME.
        """
        return 501

    def chatEnded(self, session: ChatSession, reason: ChatEnd) -> None:
        """
        Keep how it ended.
        """
        self.endings.append(reason)


class ChatClient:
    """
    The C{stoxgw-chat} client in a child process; keeps the lines it
    prints and is killed (by PID) at cleanup if still running.
    """

    def __init__(
        self, test: TestCase, name: str, sipPort: int, nick: str | None = None
    ) -> None:
        args = [
            sys.executable,
            "-m",
            "stoxgw.tools.chat",
            "--from",
            f"sip:{name.lower()}@capulet.example",
            "--name",
            name,
            "--proxy",
            f"127.0.0.1:{sipPort}",
            "--timeout",
            "20",
            LOUNGE_URI,
        ]
        if nick is not None:
            args[3:3] = ["--nick", nick]
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            args,
            cwd=TOP,
            env=dict(os.environ, PYTHONPATH=TOP),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        test.addCleanup(self.kill)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def printed(self) -> list[str]:
        """
        The lines printed so far.
        """
        with self._lock:
            return list(self.lines)

    def say(self, text: str) -> None:
        """
        Send one line of input (a message).
        """
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def quit(self) -> None:
        """
        End of input: the client says BYE and exits.
        """
        assert self.process.stdin is not None
        self.process.stdin.close()

    def kill(self) -> None:
        """
        Kill the process (by its PID) if it still runs.
        """
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


class RawMSRP(Protocol):
    """
    SIPp's MSRP side, written by hand from RFC 4975 section 7: one TCP
    connection to the focus, requests framed with their end-lines, every
    SEND received answered 200 (RFC 4975 section 7.2), the text of every
    CPIM message kept.

    @ivar ownPath: SIPp's C{a=path} (our From-Path).
    @ivar focusPath: The focus's C{a=path} (our To-Path).
    @ivar received: (CPIM From, text) of each SEND received.
    @ivar responses: The status of each of our requests, by transaction.
    """

    _START = re.compile(rb"MSRP ([A-Za-z0-9][A-Za-z0-9.+%=-]{3,31}) ([A-Z]+|\d{3})")

    def __init__(self, ownPath: str, focusPath: str) -> None:
        self.ownPath = ownPath
        self.focusPath = focusPath
        self.buffer = b""
        self.received: list[tuple[str, str]] = []
        self.responses: dict[str, int] = {}
        self.counter = 0

    def dataReceived(self, data: bytes) -> None:
        """
        Split frames at their end-lines (RFC 4975 section 7.1) and handle each.
        """
        self.buffer += data
        while True:
            start = self._START.match(self.buffer)
            if start is None:
                return
            transaction = start.group(1)
            end = re.search(
                b"-------" + re.escape(transaction) + rb"[$+#]\r\n", self.buffer
            )
            if end is None:
                return
            frame, self.buffer = self.buffer[: end.end()], self.buffer[end.end() :]
            self._frame(transaction.decode(), start.group(2).decode(), frame)

    def _frame(self, transaction: str, what: str, frame: bytes) -> None:
        head, _, body = frame.partition(b"\r\n\r\n")
        if what.isdigit():
            self.responses[transaction] = int(what)
            return
        headers = dict(
            line.split(": ", 1)
            for line in head.decode().split("\r\n")[1:]
            if ": " in line
        )
        if what == "SEND":
            self.transport.write(  # type: ignore[union-attr]
                f"MSRP {transaction} 200 OK\r\n"
                f"To-Path: {headers['From-Path']}\r\n"
                f"From-Path: {self.ownPath}\r\n"
                f"-------{transaction}$\r\n".encode()
            )
            if body:
                content = body[: body.rfind(b"\r\n-------")]
                cpim = CPIMMessage.parse(content)
                sender = cpim.fromAddress.uri if cpim.fromAddress else ""
                self.received.append((sender, cpim.body.decode("utf-8", "replace")))

    def request(self, method: str, headers: list[str], body: bytes = b"") -> str:
        """
        Send a request; @return: its transaction id.
        """
        self.counter += 1
        transaction = f"sipp{self.counter:04d}"
        lines = [
            f"MSRP {transaction} {method}",
            f"To-Path: {self.focusPath}",
            f"From-Path: {self.ownPath}",
            *headers,
        ]
        data = "\r\n".join(lines).encode() + b"\r\n"
        if body:
            data += b"\r\n" + body + b"\r\n"
        self.transport.write(data + f"-------{transaction}$\r\n".encode())  # type: ignore[union-attr]
        return transaction

    def nickname(self, nick: str) -> str:
        """
        Send NICKNAME (RFC 7701 section 7.1); @return: its transaction id.
        """
        return self.request("NICKNAME", [f'Use-Nickname: "{nick}"'])

    def say(self, text: str) -> str:
        """
        Send a CPIM SEND To the room, From SIPp; @return: its transaction id.
        """
        body = (
            f"From: <sip:sipp@sipp.test>\r\nTo: <{LOUNGE_URI}>\r\n\r\n"
            f"Content-Type: text/plain\r\n\r\n{text}"
        ).encode()
        return self.request(
            "SEND",
            [
                f"Message-ID: sippmsg{self.counter}",
                f"Byte-Range: 1-{len(body)}/{len(body)}",
                "Content-Type: message/cpim",
            ],
            body,
        )


class NativeRoomHarness(TestCase):
    """
    Prosody, and the gateway in this process with native rooms on its
    room domain.
    """

    timeout = 120
    roomOptions: Mapping[str, str] = {"reserved_nicks": "admin"}

    @defer.inlineCallbacks
    def setUp(self) -> Generator[Any, Any, None]:
        """
        Prosody, then the gateway with both component links up.
        """
        try:
            self.server = Prosody(
                components=(USER_DOMAIN, ROOM_DOMAIN),
                roomLocking=False,
                directory=self.mktemp(),
            )
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        self.server.start()
        self.addCleanup(self.server.stop)
        self.server.register("juliet", "julietpass")
        self.sipPort = freeUDPAndTCPPort()
        self.msrpPort = freePort()
        msrpOptions = yield self.msrpOptions()
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "stoxgw.conf")
        with open(path, "w") as f:
            f.write(
                nativeConfig(
                    self.server,
                    self.sipPort,
                    self.msrpPort,
                    self.roomOptions,
                    msrpOptions,
                )
            )
        self.gateway: GatewayService = makeService(loadConfig(path), reactor)
        self.gateway.startService()
        self.addCleanup(self.gateway.stopService)
        links = self.gateway.getServiceNamed("xmpp").links
        yield until(lambda: all(link.up for link in links), 15, "the component links")

    def msrpOptions(self) -> Any:
        """
        Further C{[msrp]} keys (none here), or a Deferred of them.
        """
        return {}

    @property
    def focus(self) -> Any:
        """
        The gateway's L{Focus}.
        """
        return self.gateway.getServiceNamed("rooms").focus

    @property
    def lounge(self) -> Any:
        """
        The persistent room C{lounge}.
        """
        return self.focus.rooms["lounge"]

    def direct(self) -> SIPURI:
        """
        The gateway as outbound proxy, over TCP.
        """
        return SIPURI(
            "sip",
            "127.0.0.1",
            port=self.sipPort,
            parameters=(("transport", "tcp"), ("lr", None)),
        )

    @defer.inlineCallbacks
    def juliet(
        self, nick: str = "juliet", join: bool = True
    ) -> Generator[Any, Any, RoomWatcher]:
        """
        Juliet (slixmpp on Prosody), in the lounge as C{nick}.
        """
        watcher = RoomWatcher(
            f"juliet@{self.server.domain}/balcony", "julietpass", self.server.c2sPort
        )
        self.addCleanup(watcher.stop)
        yield watcher.connect()
        if join:
            yield watcher.join(LOUNGE, nick)
        return watcher

    def nicksInLounge(self) -> list[str | None]:
        """
        The nicknames of the lounge's listed sessions.
        """
        return [m.nickname for m in self.lounge.listed]


class ThreeSIPUsersAndXMPPTests(NativeRoomHarness):
    """
    The issue's "done when": three SIP users (the project's client through
    Kamailio as proxy and MSRP relay, stoxgw-chat, SIPp) and an XMPP user in
    one native room; pjsua2 where it can take part.
    """

    @defer.inlineCallbacks
    def test_oneRoom(self) -> Generator[Any, Any, None]:
        """
        Bob (stoxgw-chat, nickname Bob), Alice (in-process, through
        Kamailio's proxy and MSRP relay; Kamailio answers her NICKNAME with
        501, so she has none), Juliet (XMPP, sees the three and the
        subject) and SIPp (its MSRP by hand: NICKNAME Tybalt) talk: each
        message reaches every other participant once, with its sender's
        in-room identity, and Juliet's private message reaches Bob alone;
        SIPp's conference fetch inside its dialog lists everyone; each
        leaves and Juliet sees it.
        """
        try:
            proxy = RoomRoutingProxy(self.sipPort, directory=self.mktemp())
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        yield deferToThread(proxy.start)
        self.addCleanup(deferToThread, proxy.stop)

        bob = ChatClient(self, "Bob", self.sipPort, nick="Bob")
        yield until(
            lambda: "nickname Bob: 200" in bob.printed(),
            20,
            f"Bob's nickname: {bob.printed()}",
        )

        alice = InProcessUser(
            self,
            "alice",
            SIPURI(
                "sip",
                "127.0.0.1",
                port=proxy.port,
                parameters=(("transport", "tcp"), ("lr", None)),
            ),
        )
        session = yield alice.join()
        assert session.dialog is not None
        self.assertTrue(session.dialog.routeSet, "Alice's dialog goes through Kamailio")
        code = yield bounded(session.sendNickname("Alice"), 15)
        self.assertEqual(code, 200)

        juliet = yield self.juliet()
        yield until(
            lambda: {f"{LOUNGE}/Bob", f"{LOUNGE}/Alice"}
            <= {who for kind, who in juliet.seen() if kind == "available"},
            15,
            "Juliet to see Bob and Alice",
        ).addErrback(
            lambda f: self.fail(
                f"{f.getErrorMessage()}: {juliet.seen()} {self.nicksInLounge()}"
            )
        )

        # SIPp joins; this process plays its MSRP side.
        ownPath = "msrp://127.0.0.1:9/sipp1;tcp"
        sipp = runSIPp(
            reactor,
            "uac_native_room.xml",
            remote=f"127.0.0.1:{self.sipPort}",
            localPort=freePort(),
            transport="t1",
            service="lounge",
            timeout=40,
            extra=[
                "-key",
                "domain",
                ROOM_DOMAIN,
                "-key",
                "msrp_path",
                ownPath,
                "-d",
                "8000",
            ],
        )
        member = yield until(
            lambda: next(
                (
                    m
                    for m in self.lounge.members
                    if m.aor == "sip:sipp@sipp.test"
                    and m.chat is not None
                    and m.chat.localMedia
                ),
                None,
            ),
            15,
            "SIPp's INVITE",
        )
        raw = RawMSRP(ownPath, member.chat.localMedia.path[-1])
        factory = ClientFactory.forProtocol(lambda: raw)  # type: ignore[arg-type]
        connector = reactor.connectTCP(MSRP_IP, self.msrpPort, factory)  # type: ignore[attr-defined]
        self.addCleanup(connector.disconnect)
        yield until(lambda: raw.transport is not None, 10, "SIPp's MSRP connection")
        nicknaming = raw.nickname("Tybalt")
        yield until(lambda: raw.responses.get(nicknaming) == 200, 10, "SIPp's NICKNAME")
        yield until(lambda: member.listed, 10, "SIPp in the room")
        yield until(
            lambda: ("available", f"{LOUNGE}/Tybalt") in juliet.seen(),
            10,
            "Juliet to see SIPp",
        )

        # Bob speaks: Alice, Juliet and SIPp get it.
        bob.say("Hello from Bob")
        yield until(
            lambda: ("groupchat", f"{LOUNGE}/Bob", "Hello from Bob")
            in juliet.messages(),
            15,
            "Juliet",
        )
        yield until(
            lambda: (f"{LOUNGE_URI};gr=Bob", "Hello from Bob") in raw.received,
            10,
            "SIPp",
        )
        yield until(
            lambda: (f"{LOUNGE_URI};gr=Bob", LOUNGE_URI, "Hello from Bob")
            in alice.heard(),
            10,
            "Alice",
        )

        # Juliet speaks from XMPP.
        yield juliet.send(LOUNGE, "Hello from Juliet", "groupchat")
        yield until(
            lambda: "juliet Hello from Juliet" in bob.printed(),
            15,
            f"Bob: {bob.printed()}",
        )
        yield until(
            lambda: (f"{LOUNGE_URI};gr=juliet", "Hello from Juliet") in raw.received,
            10,
            "SIPp",
        )
        yield until(
            lambda: (f"{LOUNGE_URI};gr=juliet", LOUNGE_URI, "Hello from Juliet")
            in alice.heard(),
            10,
            "Alice",
        )

        # Alice, through Kamailio.
        yield alice.say("Hello from Alice")
        yield until(
            lambda: ("groupchat", f"{LOUNGE}/Alice", "Hello from Alice")
            in juliet.messages(),
            15,
            "Juliet",
        )
        yield until(
            lambda: "Alice Hello from Alice" in bob.printed(),
            10,
            f"Bob: {bob.printed()}",
        )
        yield until(
            lambda: (f"{LOUNGE_URI};gr=Alice", "Hello from Alice") in raw.received,
            10,
            "SIPp",
        )

        # SIPp speaks.
        saying = raw.say("Hello from SIPp")
        yield until(
            lambda: raw.responses.get(saying) == 200, 10, "the 200 to SIPp's SEND"
        )
        yield until(
            lambda: ("groupchat", f"{LOUNGE}/Tybalt", "Hello from SIPp")
            in juliet.messages(),
            15,
            "Juliet",
        )
        yield until(
            lambda: "Tybalt Hello from SIPp" in bob.printed(),
            10,
            f"Bob: {bob.printed()}",
        )
        yield until(
            lambda: (f"{LOUNGE_URI};gr=Tybalt", LOUNGE_URI, "Hello from SIPp")
            in alice.heard(),
            10,
            "Alice",
        )

        # Juliet whispers to Bob (RFC 7701 section 6.2 through the gateway).
        yield juliet.send(f"{LOUNGE}/Bob", "Only for Bob", "chat")
        yield until(
            lambda: "juliet Only for Bob" in bob.printed(), 15, f"Bob: {bob.printed()}"
        )

        # Each message reached each other participant once, never its sender.
        self.assertEqual(len([h for h in alice.heard() if h[2].startswith("Hello")]), 3)
        self.assertNotIn("Only for Bob", [h[2] for h in alice.heard()])
        self.assertEqual(len([r for r in raw.received if r[1].startswith("Hello")]), 3)
        self.assertEqual(
            len([line for line in bob.printed() if "Hello from" in line]), 3
        )

        # SIPp fetches the state in its dialog and re-INVITEs without
        # a=chatroom (RFC 4975 section 8.4, R-156; RFC 7701 section 8,
        # SIPp checks the focus's answer; the member stays and
        # takes no more private messages.  Then SIPp hangs up.
        yield until(lambda: not member.privateMessages, 30, "SIPp's re-INVITE taken")
        self.assertTrue(member.listed and not member.ended)
        result: SIPpResult = yield bounded(sipp, 60)
        self.assertEqual(result.exitCode, 0, result.describe())
        yield until(
            lambda: ("unavailable", f"{LOUNGE}/Tybalt") in juliet.seen(),
            15,
            "Juliet to see SIPp leave",
        ).addErrback(
            lambda f: self.fail(
                f"{f.getErrorMessage()}: {juliet.seen()} {self.nicksInLounge()} {self.gateway.getServiceNamed('interworking').rooms.occupantNicks(LOUNGE)}"
            )
        )

        bob.quit()
        yield until(
            lambda: ("unavailable", f"{LOUNGE}/Bob") in juliet.seen(),
            15,
            "Juliet to see Bob leave",
        )
        session.end()
        yield until(
            lambda: ("unavailable", f"{LOUNGE}/Alice") in juliet.seen(),
            15,
            "Juliet to see Alice leave",
        )
        log = proxy.log()
        self.assertIn("RELAY INVITE initial", log)
        self.assertIn("RELAY BYE in-dialog", log)
        yield juliet.leave(LOUNGE, "juliet")
        yield until(lambda: not self.lounge.members, 15, "the lounge to empty")
        self.assertEqual(list(self.focus.rooms), ["lounge"])  # persistent

    @defer.inlineCallbacks
    def test_pjsua2(self) -> Generator[Any, Any, None]:
        """
        pjsua2 has no MSRP: its audio INVITE to the room gets 488 (RFC 7701
        section 5.2); a REFER from a participant makes the room INVITE
        pjsua2 (RFC 4579 dial-out: From the room, isfocus Contact, an MSRP
        offer), which pjsua2 refuses with 488, and the REFER's final
        NOTIFY says so.
        """
        from tests.interop.pjsua2peer import startAgent

        try:
            agent = startAgent(reactor, "udp", answer=200)
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        self.addCleanup(agent.stop)
        ready = yield agent.waitForEvent("ready", timeout=15)
        port = ready["port"]

        since = len(agent.events)
        agent.send(
            "call", uri=f"sip:lounge@{ROOM_DOMAIN}:{self.sipPort};maddr=127.0.0.1"
        )
        state = yield agent.waitForEvent(
            "callState", timeout=15, since=since, state="DISCONNECTED"
        )
        self.assertEqual(state["lastStatus"], 488)
        self.assertEqual(self.lounge.members, [])

        alice = InProcessUser(self, "alice", self.direct())
        session = yield alice.join()
        referred = yield bounded(
            alice.refers.refer(session.dialog, NameAddr(SIPURI("sip", "127.0.0.1", "pjsua", port=port))),  # type: ignore[arg-type]
            15,
        )
        # PJSIP refuses the MSRP offer itself (488) before its application
        # sees the call (PEERS.md): read the INVITE from its message trace.
        yield until(
            lambda: any(
                m.startswith(b"INVITE sip:pjsua@") for m in agent.messages("RX")
            ),
            15,
            "the room's INVITE at pjsua2",
        )
        [invite] = [
            m.decode()
            for m in agent.messages("RX")
            if m.startswith(b"INVITE sip:pjsua@")
        ]
        self.assertRegex(
            invite, rf"From: [^\r\n]*<sip:lounge@{re.escape(ROOM_DOMAIN)}>"
        )
        self.assertRegex(invite, r"Contact: <sip:lounge@127\.0\.0\.1:\d+[^>]*>;isfocus")
        self.assertIn("m=message", invite)
        self.assertIn("a=chatroom:nickname private-messages", invite)
        self.assertIn("Referred-By:", invite)
        self.assertTrue(
            any(m.startswith(b"SIP/2.0 488") for m in agent.messages("TX")),
            agent.describe(),
        )
        yield until(lambda: referred.finalStatus == 488, 15, "the REFER's final NOTIFY")
        self.assertEqual([m.aor for m in self.lounge.members], [alice.aor])
        session.end()


class ErrorTests(NativeRoomHarness):
    """
    Every RFC 7701 error of a native room, on the wire from the project's
    SIP user agent (and from XMPP where the gateway maps one).
    """

    roomOptions = {
        "reserved_nicks": "admin",
        "allowed_creators": "montague.example",
        "max_occupants": "3",
    }

    @defer.inlineCallbacks
    def test_joining(self) -> Generator[Any, Any, None]:
        """
        488 for an offer without message/cpim; 403 for a room someone not
        allowed to create it asks for; 486 beyond C{max_occupants}.
        """
        alice = InProcessUser(self, "alice", self.direct())
        d = alice.initiator.startChat(
            SIPURI.fromString(LOUNGE_URI),
            parseNameAddr(f"<{alice.aor}>"),
            alice,
            acceptTypes=("text/plain",),
        )
        failure = yield self.assertFailure(bounded(d, 15), ChatSessionError)
        self.assertEqual(failure.status, 488)

        mallory = InProcessUser(self, "mallory", self.direct())
        mallory.aor = "sip:mallory@evil.example"
        failure = yield self.assertFailure(
            mallory.join(f"sip:newroom@{ROOM_DOMAIN}"), ChatSessionError
        )
        self.assertEqual(failure.status, 403)
        self.assertNotIn("newroom", self.focus.rooms)

        for name in ("a", "b", "c"):
            yield InProcessUser(self, name, self.direct()).join()
        failure = yield self.assertFailure(
            InProcessUser(self, "d", self.direct()).join(), ChatSessionError
        )
        self.assertEqual(failure.status, 486)

    @defer.inlineCallbacks
    def test_nicknames(self) -> Generator[Any, Any, None]:
        """
        NICKNAME: 200, 425 for a nickname another user holds or a reserved
        word, 424 for one RFC 7700 refuses; Juliet joining from XMPP with
        a SIP user's nickname gets a conflict (the focus's 425).
        """
        alice = InProcessUser(self, "alice", self.direct())
        bob = InProcessUser(self, "bob", self.direct())
        aliceSession = yield alice.join()
        bobSession = yield bob.join()
        code = yield bounded(aliceSession.sendNickname("Alice"), 10)
        self.assertEqual(code, 200)
        for nick, status in (("ALICE", 425), ("Admin", 425), ("bo\ue000b", 424)):
            error = yield self.assertFailure(
                bounded(bobSession.sendNickname(nick), 10), MSRPSendError
            )
            self.assertEqual(error.code, status, nick)
        juliet = yield self.juliet(join=False)
        yield self.assertFailure(juliet.join(LOUNGE, "alice"), Exception)
        yield juliet.join(LOUNGE, "juliet")
        self.assertEqual(
            sorted(n or "" for n in self.nicksInLounge()), ["", "Alice", "juliet"]
        )

    @defer.inlineCallbacks
    def test_messages(self) -> Generator[Any, Any, None]:
        """
        SEND: 415 without CPIM, 403 for two To or someone else's From, 404
        for a private message to nobody, 428 to a participant that did not
        declare private-messages; none of them reaches anyone.
        """
        alice = InProcessUser(self, "alice", self.direct())
        bob = InProcessUser(self, "bob", self.direct())
        carol = InProcessUser(self, "carol", self.direct())
        session = yield alice.join()
        yield bob.join()
        carolSession = yield carol.join(chatroom=("nickname",))
        yield bounded(carolSession.sendNickname("Carol"), 10)
        error = yield self.assertFailure(
            bounded(session.sendMessage("text/plain", b"no wrapper"), 10), MSRPSendError
        )
        self.assertEqual(error.code, 415)
        cases = [
            (dict(to=(LOUNGE_URI, bob.aor)), 403),
            (dict(sender=bob.aor), 403),
            (dict(to=(f"{LOUNGE_URI};gr=Nobody",)), 404),
            (dict(to=(f"{LOUNGE_URI};gr=Carol",)), 428),
        ]
        for options, status in cases:
            error = yield self.assertFailure(
                alice.say("refused", **options), MSRPSendError
            )
            self.assertEqual(error.code, status, options)
        yield alice.say("accepted")
        yield until(lambda: bob.heard() and carol.heard(), 10, "the accepted message")
        self.assertEqual([h[2] for h in bob.heard()], ["accepted"])
        self.assertEqual([h[2] for h in carol.heard()], ["accepted"])

    @defer.inlineCallbacks
    def test_referAndSubscribe(self) -> Generator[Any, Any, None]:
        """
        REFER: 403 from someone not in the room, 403 for method BYE, 416
        for a URI that is not SIP; a REFER to Carol (in-process, accepting)
        brings her in, dialled out. SUBSCRIBE: 403 from someone not in the
        room, 404 for a room that does not exist.
        """
        alice = InProcessUser(self, "alice", self.direct())
        session = yield alice.join()
        stranger = InProcessUser(self, "mallory", self.direct())
        refers = [
            (
                stranger.refers.refer(
                    SIPURI.fromString(LOUNGE_URI),
                    NameAddr(SIPURI.fromString(alice.aor)),
                    fromAddress=NameAddr(SIPURI.fromString(stranger.aor)),
                ),
                403,
            ),
            (alice.refers.refer(session.dialog, NameAddr(SIPURI.fromString("sip:bob@127.0.0.1;method=BYE"))), 403),  # type: ignore[arg-type]
            (alice.refers.refer(session.dialog, parseNameAddr("<tel:+15551234>")), 416),  # type: ignore[arg-type]
        ]
        for d, status in refers:
            failure = yield self.assertFailure(bounded(d, 10), SIPError)
            self.assertEqual(failure.status, status)

        carol = InProcessUser(self, "carol", self.direct())
        from stoxgw.chat.session import AcceptChat, ChatAcceptor

        class Accept:
            """
            Carol's answer to the room's INVITE: accepted.
            """

            def chatOffered(self, offer: Any) -> AcceptChat:
                return AcceptChat(
                    carol,
                    acceptTypes=("message/cpim",),
                    chatroom=("nickname", "private-messages"),
                )

        ChatAcceptor(carol.ua, carol.endpoint, reactor, Accept()).register()  # type: ignore[arg-type]
        host, port = carol.ua.transport.sentBy(carol.ua.transport.transports[0])
        target = SIPURI(
            "sip", host, "carol", port=port, parameters=(("transport", "tcp"),)
        )
        yield bounded(alice.refers.refer(session.dialog, NameAddr(target)), 10)  # type: ignore[arg-type]
        yield until(lambda: len(self.lounge.listed) == 2, 15, "Carol dialled in")
        yield alice.say("Welcome, Carol")
        yield until(lambda: carol.heard(), 10, "Carol to hear Alice")

        for user, room, status in (
            (stranger, LOUNGE_URI, 403),
            (alice, f"sip:nothere@{ROOM_DOMAIN}", 404),
        ):
            subscription = user.events.subscribe(
                SIPURI.fromString(room),
                "conference",
                600,
                fromAddress=NameAddr(SIPURI.fromString(user.aor)),
            )
            failure = yield self.assertFailure(
                bounded(subscription.established, 10), SIPError
            )
            self.assertEqual(failure.status, status)


class ThroughKamailioRelayTests(NativeRoomHarness):
    """
    A native room whose participants reach it through Kamailio as SIP proxy
    and MSRP relay (RFC 4976).  Kamailio 5.6's relay only delivers to
    clients that AUTHed with it (it never opens a connection of its own,
    PEERS.md), so the gateway uses it too (C{[msrp] relay}): every MSRP
    session of the room, the XMPP user's leg included, goes through it.
    """

    @defer.inlineCallbacks
    def msrpOptions(self) -> Generator[Any, Any, Mapping[str, str]]:
        """
        Start Kamailio's relay and proxy; the gateway uses the relay.
        """
        try:
            self.relay = KamailioMSRPRelay(
                users={
                    "gateway": "gatewaypass",
                    "alice": "alicepass",
                    "bob": "bobpass",
                },
                directory=self.mktemp(),
            )
            self.proxy = RoomRoutingProxy(self.sipPort, directory=self.mktemp())
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        yield deferToThread(self.relay.start)
        self.addCleanup(deferToThread, self.relay.stop)
        yield deferToThread(self.proxy.start)
        self.addCleanup(deferToThread, self.proxy.stop)
        return {
            "relay": self.relay.relayURI,
            "relay_username": "gateway",
            "relay_password": "gatewaypass",
        }

    @defer.inlineCallbacks
    def test_relayed(self) -> Generator[Any, Any, None]:
        """
        Alice (through Kamailio's proxy and relay) and Bob (relay only)
        join; NICKNAME is answered by Kamailio itself (501: it relays only
        SEND and REPORT), so they keep no nickname and their messages come
        From their AORs; regular and private messages go both ways through
        the relay, chunked (2048-octet chunks) and whole.

        (An XMPP user cannot join such a room: its leg's NICKNAME gets
        Kamailio's 501 too, which the RFC 7702 section 5 side turns into
        C{<feature-not-implemented/>}; docs/native-rooms.md.)
        """
        viaProxy = SIPURI(
            "sip",
            "127.0.0.1",
            port=self.proxy.port,
            parameters=(("transport", "tcp"), ("lr", None)),
        )
        alice = InProcessUser(self, "alice", viaProxy, self.relay)
        bob = InProcessUser(self, "bob", self.direct(), self.relay)
        for user in (alice, bob):
            yield bounded(user.endpoint.startRelay(), 15)
        aliceSession = yield alice.join()
        assert aliceSession.dialog is not None
        self.assertTrue(
            aliceSession.dialog.routeSet, "Alice's dialog goes through Kamailio"
        )
        yield bob.join()
        yield until(lambda: len(self.lounge.listed) == 2, 10, "both in the room")
        error = yield self.assertFailure(
            bounded(aliceSession.sendNickname("Alice"), 15), MSRPSendError
        )
        self.assertEqual(error.code, 501)

        long = "Relayed hello. " * 300
        yield alice.say(long)
        yield until(lambda: (alice.aor, LOUNGE_URI, long) in bob.heard(), 15, "Bob")
        yield bob.say("Relayed answer, privately", to=(alice.aor,))
        yield until(
            lambda: (bob.aor, alice.aor, "Relayed answer, privately") in alice.heard(),
            15,
            "Alice",
        )
        self.assertEqual([h for h in alice.heard() if h[2] == long], [])
        aliceSession.end()
        yield until(lambda: len(self.lounge.listed) == 1, 15, "Alice to leave")
        log = self.proxy.log()
        self.assertIn("RELAY INVITE initial", log)
        self.assertIn("RELAY BYE in-dialog", log)
