# -*- test-case-name: tests.interop.test_siptoxmpp_servers -*-
"""
Interop, RFC 7702 section 6 ("Gateway B", SPEC C.2, flows F35-F62) end to
end: a SIP/MSRP user enters a room of a real Prosody and of a real ejabberd
MUC through the real gateway, and once more through Kamailio as a
record-routing SIP proxy.

The gateway under test is the real service tree: this module writes a
configuration file, loads it with L{stoxgw.config.loadConfig} and builds
the gateway with L{stoxgw.service.makeService} on the running reactor
(in-process rather than C{twistd -n stoxgw} in a child process, so that
tests can look at its state and nothing but the reactor has to be
synchronised; L{tests.interop.test_component_prosody} and
L{tests.interop.test_demo} cover the C{twistd} plugin).  Its SIP side
listens on 127.0.0.1 (UDP and TCP), its MSRP endpoint on a free port, its
component link goes to the XMPP server under test.

The peers:

  - the XMPP server (L{Prosody}, room locking off, or L{Ejabberd}),
    started and stopped by each test;
  - the SIP user "Romeo" (C{sip:romeo@example.org}): the project's own SIP
    UA and MSRP endpoint with a L{ChatInitiator}, whose handler
    (L{SIPUser}) keeps every MSRP message it receives (its raw CPIM is
    parsed with L{CPIMMessage} by the tests) and how its chat ended; it
    uses the gateway (or Kamailio) as outbound proxy;
  - SIPp as an independent conference subscriber for Romeo (the scenario
    C{tests/fixtures/sipp/uac_subscribe_room_conference.xml}; its message
    log is read back to check the conference-info documents);
  - slixmpp clients (carol, dave) in their own threads (see
    L{tests.interop.test_occupant_servers}).  carol always enters the room
    first, so she creates it and is its owner (a moderator): she can kick.

Every wait is bounded in time; nothing sleeps in place of an assertion.
"""

from __future__ import annotations

import datetime
import os
import re
import threading
from collections.abc import Generator, Mapping, Sequence
from typing import Any

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet import defer, reactor
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from stoxgw.chat.session import ChatInitiator, ChatSession, EndCause
from stoxgw.config import loadConfig
from stoxgw.formats.conferenceinfo import ConferenceInfo, ElementState
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.msrp.session import MSRPSendError
from stoxgw.service import GatewayService, makeService
from stoxgw.sip.headers import parseReasons
from stoxgw.sip.message import SIPMessage, SIPRequest
from stoxgw.sip.transport import Address, Flow, SIPTransport
from stoxgw.sip.uri import SIPURI, NameAddr, parseNameAddr
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings
from tests.interop.ejabberd import Ejabberd
from tests.interop.kamailio_proxy import KamailioProxy
from tests.interop.msrpendpoints import startEndpoint
from tests.interop.peers import PeerUnavailable, Prosody, freePort, freeUDPAndTCPPort
from tests.interop.sipp import SIPpResult, runSIPp
from tests.interop.test_occupant_servers import bounded, until
from tests.interop.test_siptoxmpp_prosody import SIPUser, WatchingUser

#: The gateway's component domain (the SIP users' real JIDs).
USER_DOMAIN = "sip.xmpp.test"

#: The SIP user's address of record and its From (display name = nick).
ROMEO = "sip:romeo@example.org"
ROMEO_FROM = f'"Romeo" <{ROMEO}>;tag=romeo1'

#: SIPp as Romeo's second device: a conference subscription to the room
#: URI (RFC 4575, RFC 6665, RFC 7702 section 6.2), in
#: C{tests/fixtures/sipp/}; its header comment tells the steps.
CONFERENCE_SCENARIO = "uac_subscribe_room_conference.xml"

#: One entry of SIPp's message log (C{-trace_msg}): a dashed line with the
#: time, then C{UDP message sent (N bytes):} or C{UDP message received [N]
#: bytes :}, then the message.
_SIPP_ENTRY = re.compile(
    r"^-{10,} [^\n]*\n(?:UDP|TCP) message (sent|received)[^\n]*\n\n(.*?)(?=^-{10,} |\Z)",
    re.MULTILINE | re.DOTALL,
)


def sippMessages(log: str) -> list[tuple[str, str]]:
    """
    The messages of a SIPp message log, in order.

    @return: C{("sent" or "received", message text)} pairs.
    """
    return [(m.group(1), m.group(2)) for m in _SIPP_ENTRY.finditer(log)]


def notifyAnswers(log: str) -> int:
    """
    @return: how many 200s to a NOTIFY SIPp has sent so far.
    """
    return sum(
        1
        for direction, text in sippMessages(log)
        if direction == "sent"
        and text.startswith("SIP/2.0 200")
        and re.search(r"^CSeq:\s*\d+\s+NOTIFY", text, re.MULTILINE | re.IGNORECASE)
    )


def conferenceDocuments(log: str) -> list[ConferenceInfo]:
    """
    The conference-info documents of the C{active} NOTIFYs SIPp received
    (not the final one, C{terminated}), in order, a retransmitted NOTIFY
    counted once.
    """
    documents: list[ConferenceInfo] = []
    seen: set[str] = set()
    for direction, text in sippMessages(log):
        if direction != "received" or not text.startswith("NOTIFY "):
            continue
        if not re.search(
            r"^Subscription-State:\s*active", text, re.MULTILINE | re.IGNORECASE
        ):
            continue
        cseq = re.search(r"^CSeq:\s*(\d+)", text, re.MULTILINE | re.IGNORECASE)
        key = cseq.group(1) if cseq else text
        if key in seen:
            continue
        seen.add(key)
        body = re.search(r"<conference-info\b.*</conference-info>", text, re.DOTALL)
        if body is not None:
            documents.append(ConferenceInfo.parse(body.group(0).encode("utf-8")))
    return documents


class RequestRecorder:
    """
    Sits between a L{SIPTransport} and its user (the UA) and keeps every
    request the transport delivers or sends, so that a test can read the
    headers of what the SIP user received (a BYE's C{Reason}, a NOTIFY's
    C{Subscription-State}) and sent (its SDP offer).

    @ivar requests: The requests received, in order (over TCP: no
        retransmissions).
    @ivar sent: The requests sent, in order.
    """

    def __init__(self, transport: SIPTransport) -> None:
        self.requests: list[SIPRequest] = []
        self.sent: list[SIPRequest] = []
        self._user = transport.user
        transport.user = self  # type: ignore[assignment]
        send = transport.sendMessage

        def recording(message: SIPMessage, destination: Address) -> defer.Deferred[Flow]:
            if isinstance(message, SIPRequest):
                self.sent.append(message)
            return send(message, destination)

        transport.sendMessage = recording  # type: ignore[method-assign]

    def messageReceived(self, message: SIPMessage, flow: Flow) -> None:
        """
        Keep a request, then hand the message on.
        """
        if isinstance(message, SIPRequest):
            self.requests.append(message)
        assert self._user is not None
        self._user.messageReceived(message, flow)

    def received(self, method: str) -> list[SIPRequest]:
        """
        @return: the requests of C{method} received so far.
        """
        return [r for r in self.requests if r.method == method]


def readFile(path: str) -> str:
    """
    @return: the text of C{path}, or C{""} while it does not exist.
    """
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class RoomWatcher(WatchingUser):
    """
    A slixmpp user that also keeps, for every MUC presence, its type, its
    C{from}, its status codes and the nick of its C{<item/>} (what a nick
    change, XEP-0045 7.6, and a kick, 8.2, look like).
    """

    def __init__(self, jid: str, password: str, port: int) -> None:
        super().__init__(jid, password, port)
        self.details: list[tuple[str, str, frozenset[int], str]] = []
        self._detailsLock = threading.Lock()

    def _onPresence(self, presence: Any) -> None:
        super()._onPresence(presence)
        muc = presence["muc"]
        with self._detailsLock:
            self.details.append(
                (
                    presence["type"],
                    str(presence["from"]),
                    frozenset(muc["status_codes"]),
                    muc["item_nick"],
                )
            )

    def seenDetails(self) -> list[tuple[str, str, frozenset[int], str]]:
        """
        @return: what L{details} holds now.
        """
        with self._detailsLock:
            return list(self.details)

    def kick(self, room: str, nick: str) -> defer.Deferred[None]:
        """
        Kick C{nick} out of C{room} (XEP-0045 8.2: role C{none}); needs a
        moderator.
        """

        async def kick() -> None:
            await self.client.plugin["xep_0045"].set_role(room, nick, "none", reason="Out!")

        return self.run(kick())

    def leave(self, room: str, nick: str) -> defer.Deferred[None]:
        """
        Leave C{room} (XEP-0045 7.14).
        """

        async def leave() -> None:
            self.client.plugin["xep_0045"].leave_muc(room, nick)

        return self.run(leave())


def gatewayConfig(
    server: Any,
    sipPort: int,
    msrpPort: int,
    gatewayOptions: Mapping[str, str] = {},
    sipOptions: Mapping[str, str] = {},
) -> str:
    """
    The gateway's configuration file (see C{etc/stoxgw.conf.sample}) for
    C{server}: SIP on 127.0.0.1 UDP and TCP C{sipPort}, trusting 127.0.0.1
    (the SIP user, SIPp and Kamailio), MSRP on C{msrpPort}, the user domain
    as component of C{server}, only its MUC service served.

    @param gatewayOptions: Further C{[gateway]} keys and their values.
    @param sipOptions: Further C{[sip]} keys and their values.
    """
    extra = "".join(f"{key} = {value}\n" for key, value in gatewayOptions.items())
    extraSIP = "".join(f"{key} = {value}\n" for key, value in sipOptions.items())
    return (
        "[gateway]\n"
        f"muc_domains = {server.mucDomain}\n"
        "reflection_timeout = 10\n"
        f"{extra}"
        "[sip]\n"
        "local_ip = 127.0.0.1\n"
        f"udp_port = {sipPort}\n"
        f"tcp_port = {sipPort}\n"
        "trusted_peers = 127.0.0.1/32\n"
        f"{extraSIP}"
        "[msrp]\n"
        "local_ip = 127.0.0.1\n"
        f"port = {msrpPort}\n"
        "transaction_timeout = 10\n"
        "[xmpp]\n"
        "server = 127.0.0.1\n"
        f"port = {server.componentPort}\n"
        f"user_domain = {USER_DOMAIN}\n"
        f"secret = {server.secret}\n"
        "reconnect_max_delay = 2\n"
    )


class GatewayHarness:
    """
    The set-up shared by the test cases: an XMPP server (L{makeServer}),
    the gateway built by L{makeService} from a configuration file, and the
    SIP user's UA and MSRP endpoint with a L{ChatInitiator} whose outbound
    proxy is L{outboundProxy}.

    @ivar server: The XMPP server.
    @ivar room: The room's bare JID, C{room@<muc domain>}.
    @ivar roomURI: The room's SIP URI, C{sip:room@<muc domain>}.
    @ivar gateway: The gateway's root service.
    @ivar sipPort: The gateway's SIP port (UDP and TCP).
    @ivar msrpPort: The gateway's MSRP port.
    @ivar initiator: The SIP user's L{ChatInitiator}.
    @ivar userAgent: The SIP user's L{SIPUserAgent}.
    @ivar sipRequests: The L{RequestRecorder} of the SIP user's transport.
    @ivar userPort: The SIP user's TCP port (bound before the gateway
        starts, so L{gatewaySIPOptions} can name it).
    @ivar gatewayOptions: Further C{[gateway]} configuration keys.
    @ivar watcherClass: The slixmpp user class of L{xmppUser}.
    """

    timeout = 60
    gatewayOptions: Mapping[str, str] = {}
    watcherClass: type[RoomWatcher] = RoomWatcher

    def makeServer(self) -> Any:
        """
        @return: the XMPP server to test against (not started).
        """
        raise NotImplementedError()

    def outboundProxy(self) -> SIPURI | defer.Deferred[SIPURI]:
        """
        @return: the SIP user's outbound proxy: by default the gateway
            itself, over TCP.
        """
        return SIPURI(
            "sip",
            "127.0.0.1",
            port=self.sipPort,
            parameters=(("transport", "tcp"), ("lr", None)),
        )

    def gatewaySIPOptions(self) -> Mapping[str, str]:
        """
        @return: further C{[sip]} configuration keys (none by default); the
            SIP user's L{userPort} is known when this is called.
        """
        return {}

    @defer.inlineCallbacks
    def setUp(self) -> Generator[Any, Any, None]:
        try:
            self.server = self.makeServer()
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        self.server.start()
        self.addCleanup(self.server.stop)  # type: ignore[attr-defined]
        self.server.register("carol", "carolpass")
        self.room = f"room@{self.server.mucDomain}"
        self.roomURI = f"sip:{self.room}"

        self.sipPort = freeUDPAndTCPPort()
        self.msrpPort = freePort()
        # The SIP user's transport binds port 0 itself: no other process
        # can take its port between choosing and binding it.
        transport = SIPTransport(reactor, "127.0.0.1")  # type: ignore[arg-type]
        self.userPort = transport.listenTCP(0).getHost().port
        self.addCleanup(transport.stopListening)  # type: ignore[attr-defined]
        directory = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        os.makedirs(directory)
        path = os.path.join(directory, "stoxgw.conf")
        with open(path, "w") as f:
            f.write(
                gatewayConfig(
                    self.server,
                    self.sipPort,
                    self.msrpPort,
                    self.gatewayOptions,
                    self.gatewaySIPOptions(),
                )
            )
        self.gateway: GatewayService = makeService(loadConfig(path), reactor)
        self.gateway.startService()
        self.addCleanup(self.gateway.stopService)  # type: ignore[attr-defined]
        [link] = self.gateway.getServiceNamed("xmpp").links
        yield until(lambda: link.up, 15, "the gateway's component link")

        proxy = yield self.outboundProxy()
        ua = SIPUserAgent(
            reactor,  # type: ignore[arg-type]
            transport,
            settings=UserAgentSettings(outboundProxy=proxy),
            admission=SIPTrust.fromStrings(["127.0.0.1"]),
        )
        self.addCleanup(ua.close)  # type: ignore[attr-defined]
        self.userAgent = ua
        self.sipRequests = RequestRecorder(transport)
        self.initiator = ChatInitiator(
            ua, startEndpoint(self, transactionTimeout=10), reactor  # type: ignore[arg-type]
        )

    # -- the gateway's state -------------------------------------------------

    @property
    def participants(self) -> dict[Any, Any]:
        """
        The gateway's SIP users in rooms (L{SIPToXMPP.participants}).
        """
        interworking = self.gateway.getServiceNamed("interworking")
        return interworking.sipToXMPP.participants  # type: ignore[no-any-return]

    # -- the users -------------------------------------------------------------

    @defer.inlineCallbacks
    def xmppUser(
        self, nick: str | None, user: str = "carol"
    ) -> Generator[Any, Any, RoomWatcher]:
        """
        Connect C{user} (registered) with slixmpp (a L{watcherClass}) and
        enter the room as C{nick} (not at all for L{None}).
        """
        watcher = self.watcherClass(
            f"{user}@{self.server.domain}/slix", f"{user}pass", self.server.c2sPort
        )
        self.addCleanup(watcher.stop)  # type: ignore[attr-defined]
        yield watcher.connect()
        if nick is not None:
            yield watcher.join(self.room, nick)
        return watcher

    @defer.inlineCallbacks
    def enter(
        self,
        user: SIPUser,
        chatroom: Sequence[str] = ("nickname", "private-messages"),
        acceptWrappedTypes: Sequence[str] = ("text/plain",),
    ) -> Generator[Any, Any, ChatSession]:
        """
        The SIP user INVITEs the room URI as Romeo (RFC 7702 section 6.1,
        F35-F43), offering C{a=chatroom} C{chatroom} and
        C{a=accept-wrapped-types} C{acceptWrappedTypes}; the session is
        ended at cleanup if the test did not.
        """
        session: ChatSession = yield bounded(
            self.initiator.startChat(
                SIPURI.fromString(self.roomURI),
                parseNameAddr(ROMEO_FROM),
                user,
                acceptTypes=("message/cpim",),
                acceptWrappedTypes=tuple(acceptWrappedTypes),
                chatroom=tuple(chatroom),
            ),
            20,
        )
        self.addCleanup(self.hangUp, session)  # type: ignore[attr-defined]
        return session

    def hangUp(self, session: ChatSession) -> defer.Deferred[Any] | None:
        """
        Cleanup: end a chat a test left running, and let the gateway take
        the BYE (bounded).
        """
        if session.ended:
            return None
        session.end()
        return until(lambda: not self.participants, 10, "the gateway to take the BYE")

    def cpim(self, text: str, to: str | None = None) -> bytes:
        """
        A CPIM message from Romeo (RFC 3862, RFC 7701 section 6.1), to the
        room or to C{to}.
        """
        return CPIMMessage.build(
            contentType="text/plain;charset=UTF-8",
            body=text.encode("utf-8"),
            fromAddress=CPIMAddress(ROMEO, "Romeo"),
            toAddresses=(CPIMAddress(to or self.roomURI),),
        ).toBytes()

    def received(self, user: SIPUser) -> list[CPIMMessage]:
        """
        The CPIM messages the SIP user received, parsed (RFC 7701: the
        focus sends C{message/cpim} only).
        """
        for message in user.messages:
            self.assertEqual(message.contentType, "message/cpim")  # type: ignore[attr-defined]
        return [CPIMMessage.parse(message.body) for message in user.messages]

    def assertFreshDateTime(self, message: CPIMMessage) -> None:
        """
        The CPIM C{DateTime} (RFC 3862 section 4.4, R-175) is there and
        close to now.
        """
        stamp = message.dateTime
        self.assertIsNotNone(stamp, message)  # type: ignore[attr-defined]
        assert stamp is not None
        now = datetime.datetime.now(datetime.timezone.utc)
        age = abs((now - stamp).total_seconds())
        self.assertLess(age, 60, stamp)  # type: ignore[attr-defined]


class SIPToXMPPScenariosMixin(GatewayHarness):
    """
    RFC 7702 section 6 on one XMPP server (see the subclasses).
    """

    @defer.inlineCallbacks
    def test_enter(self) -> Generator[Any, Any, None]:
        """
        F35-F43, R-032, R-034, R-052, R-054, R-209: carol is in the room;
        Romeo's INVITE to C{sip:room@<muc domain>} is answered by the
        gateway as a focus once it joined the room: C{isfocus} in the 200's
        Contact, C{a=accept-types:message/cpim}, C{a=chatroom:nickname
        private-messages} and the gateway's own MSRP path; carol sees
        Romeo's occupant available as C{room/Romeo}.
        """
        carol = yield self.xmppUser("carol")
        session = yield self.enter(SIPUser())
        assert session.dialog is not None
        response = session.dialog.inviteResponse
        assert response is not None
        self.assertEqual(response.status, 200)
        contact = response.header("Contact")
        assert contact is not None
        self.assertTrue(NameAddr.fromString(contact).hasParameter("isfocus"), contact)
        # The participant is in the room already (R-209: join, then answer).
        self.assertEqual([p.joined for p in self.participants.values()], [True])
        sdp = response.body.decode("utf-8").splitlines()
        [chatroom] = [line for line in sdp if line.startswith("a=chatroom:")]
        self.assertEqual(
            sorted(chatroom.split(":", 1)[1].split()), ["nickname", "private-messages"]
        )
        self.assertIn("a=accept-types:message/cpim", sdp)
        [path] = [line for line in sdp if line.startswith("a=path:")]
        self.assertTrue(
            path.startswith(f"a=path:msrp://127.0.0.1:{self.msrpPort}/"), path
        )
        occupant = f"{self.room}/Romeo"
        yield until(
            lambda: ("available", occupant) in carol.seen(), 10, "carol to see Romeo enter"
        )

    @defer.inlineCallbacks
    def test_conferenceRoster(self) -> Generator[Any, Any, None]:
        """
        RFC 7702 section 6.2, R-036, R-176, R-177, R-213 (SPEC C.2.1 step
        8): SIPp subscribes to the room URI for Romeo: the first NOTIFY is
        a full conference-info of the room as Romeo's occupant sees it,
        carol as C{sip:room@<muc domain>;gr=carol} and Romeo himself; dave
        entering gives a partial NOTIFY adding him (version + 1), dave
        leaving one deleting him (version + 1); the unsubscription ends
        with a terminated NOTIFY.
        """
        self.server.register("dave", "davepass")
        yield self.xmppUser("carol")
        yield self.enter(SIPUser())
        messageLog = os.path.abspath(self.mktemp()) + ".log"  # type: ignore[attr-defined]
        try:
            done = runSIPp(
                reactor,
                CONFERENCE_SCENARIO,
                remote=f"127.0.0.1:{self.sipPort}",
                localPort=freeUDPAndTCPPort(),
                transport="u1",
                service="room",
                timeout=40,
                extra=[
                    "-key", "room", self.room,
                    "-key", "user", ROMEO,
                    "-message_file", messageLog,
                ],
            )
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        finished: list[SIPpResult] = []

        def ended(result: SIPpResult) -> SIPpResult:
            finished.append(result)
            return result

        done.addCallback(ended)

        def answered(count: int) -> Any:
            return lambda: finished or notifyAnswers(readFile(messageLog)) >= count

        def stillRunning(what: str) -> None:
            if finished:
                description = finished[0].describe()
                self.fail(f"SIPp ended {what}:\n{description}")  # type: ignore[attr-defined]

        # SIPp writes its message log message by message: once it answered
        # a NOTIFY it waits for the next one.
        yield until(answered(1), 20, "SIPp to take the full NOTIFY")
        stillRunning("before the full NOTIFY")
        dave = yield self.xmppUser("dave", user="dave")
        yield until(answered(2), 20, "SIPp to take the partial NOTIFY for dave")
        stillRunning("before dave entered")
        yield dave.leave(self.room, "dave")
        result: SIPpResult = yield bounded(done, 55)
        self.assertEqual(result.exitCode, 0, result.describe())

        carolURI = f"{self.roomURI};gr=carol"
        romeoURI = f"{self.roomURI};gr=Romeo"
        daveURI = f"{self.roomURI};gr=dave"
        documents = conferenceDocuments(readFile(messageLog))
        self.assertEqual(len(documents), 3, documents)
        full, entered, left = documents
        self.assertEqual(full.entity, self.roomURI)
        self.assertEqual(full.state, ElementState.FULL)
        self.assertIsNotNone(full.description)
        self.assertEqual(
            sorted((u.entity, u.state) for u in full.userList),
            sorted([(carolURI, ElementState.FULL), (romeoURI, ElementState.FULL)]),
        )
        [carol] = [u for u in full.userList if u.entity == carolURI]
        self.assertEqual(carol.displayText, "carol")
        self.assertEqual(carol.roles, ("moderator",))
        self.assertEqual([e.entity for e in carol.endpoints], [carolURI])
        self.assertEqual(entered.state, ElementState.PARTIAL)
        assert full.version is not None
        self.assertEqual(entered.version, full.version + 1)
        self.assertEqual(
            [(u.entity, u.state) for u in entered.userList], [(daveURI, ElementState.FULL)]
        )
        self.assertEqual(left.state, ElementState.PARTIAL)
        self.assertEqual(left.version, full.version + 2)
        self.assertEqual(
            [(u.entity, u.state) for u in left.userList], [(daveURI, ElementState.DELETED)]
        )

    @defer.inlineCallbacks
    def test_groupchat(self) -> Generator[Any, Any, None]:
        """
        F44-F47, R-037, R-038, R-039, R-065, R-196 and SPEC C.2.2 step 5:
        Romeo's SEND to the room is answered 200 (after the reflection) and
        carol gets its body as groupchat from C{room/Romeo}; carol's
        groupchat reaches Romeo as CPIM C{To: <sip:room@<muc domain>>} (the
        room, RFC 7701 section 6.1: a client tells room from private
        messages by the CPIM To), C{From: <sip:room@<muc
        domain>;gr=carol>} (R-207) with a C{DateTime} (R-175); Romeo never
        gets his own message back.
        """
        carol = yield self.xmppUser("carol")
        romeo = SIPUser()
        session = yield self.enter(romeo)
        occupant = f"{self.room}/Romeo"
        yield until(
            lambda: ("available", occupant) in carol.seen(), 10, "carol to see Romeo enter"
        )
        yield bounded(session.sendMessage("message/cpim", self.cpim("Romeo is here!")))
        yield until(
            lambda: ("groupchat", occupant, "Romeo is here!") in carol.messages(),
            10,
            "carol to get Romeo's message",
        )

        yield carol.send(self.room, "Hello, Romeo", "groupchat")
        yield until(lambda: romeo.messages, 10, "Romeo to get carol's message")
        [message] = self.received(romeo)
        self.assertEqual(message.body, b"Hello, Romeo")
        self.assertEqual(message.contentType.mimeType, "text/plain")
        fromAddress = message.fromAddress
        assert fromAddress is not None
        self.assertEqual(fromAddress.uri, f"{self.roomURI};gr=carol")
        self.assertFreshDateTime(message)
        self.assertEqual(
            [a.uri for a in message.toAddresses],
            [self.roomURI],
            "the CPIM To of a room message must be the room (RFC 7701 section 6.1)",
        )

    @defer.inlineCallbacks
    def test_privateMessages(self) -> Generator[Any, Any, None]:
        """
        F48-F50, R-040, R-197 and SPEC C.2.3 step 4: Romeo's SEND with CPIM
        C{To: <sip:room@<muc domain>;gr=carol>} reaches carol as a
        C{type='chat'} message from C{room/Romeo}; carol's private message
        to C{room/Romeo} reaches Romeo as CPIM C{To} his own URI, C{From}
        C{<sip:room@<muc domain>;gr=carol>}, with a C{DateTime}.
        """
        carol = yield self.xmppUser("carol")
        romeo = SIPUser()
        session = yield self.enter(romeo)
        occupant = f"{self.room}/Romeo"
        yield until(
            lambda: ("available", occupant) in carol.seen(), 10, "carol to see Romeo enter"
        )
        carolURI = f"{self.roomURI};gr=carol"
        yield bounded(session.sendMessage("message/cpim", self.cpim("psst, carol", carolURI)))
        yield until(
            lambda: ("chat", occupant, "psst, carol") in carol.messages(),
            10,
            "carol to get Romeo's private message",
        )
        self.assertEqual(
            [m for m in carol.messages() if m[2] == "psst, carol"],
            [("chat", occupant, "psst, carol")],
        )

        yield carol.send(occupant, "psst, Romeo", "chat")
        yield until(lambda: romeo.messages, 10, "Romeo to get carol's private message")
        [message] = self.received(romeo)
        self.assertEqual(message.body, b"psst, Romeo")
        fromAddress = message.fromAddress
        assert fromAddress is not None
        self.assertEqual(fromAddress.uri, carolURI)
        self.assertEqual([a.uri for a in message.toAddresses], [ROMEO])
        self.assertFreshDateTime(message)

    @defer.inlineCallbacks
    def test_nickname(self) -> Generator[Any, Any, None]:
        """
        F51-F54, R-041, R-087, R-088, R-090, R-210: Romeo's NICKNAME
        C{"Montecchi"} is answered 200 once the room confirmed, and carol
        sees the change (unavailable C{room/Romeo} with status 303 and the
        new nick, then C{room/Montecchi}); a NICKNAME for carol's nick gets
        425 and the nick stays C{Montecchi} (his next message comes from
        C{room/Montecchi}).
        """
        carol = yield self.xmppUser("carol")
        session = yield self.enter(SIPUser())
        yield until(
            lambda: ("available", f"{self.room}/Romeo") in carol.seen(),
            10,
            "carol to see Romeo enter",
        )
        code = yield bounded(session.sendNickname("Montecchi"))
        self.assertEqual(code, 200)
        yield until(
            lambda: ("available", f"{self.room}/Montecchi") in carol.seen(),
            10,
            "carol to see Montecchi",
        )
        changes = [
            (codes, nick)
            for kind, sender, codes, nick in carol.seenDetails()
            if kind == "unavailable" and sender == f"{self.room}/Romeo"
        ]
        self.assertTrue(changes, carol.seenDetails())
        self.assertIn(303, changes[0][0])
        self.assertEqual(changes[0][1], "Montecchi")

        try:
            yield bounded(session.sendNickname("carol"))
        except MSRPSendError as e:
            self.assertEqual(e.code, 425)
        else:
            self.fail("NICKNAME for carol's nick succeeded")

        yield bounded(session.sendMessage("message/cpim", self.cpim("Still Montecchi")))
        yield until(
            lambda: ("groupchat", f"{self.room}/Montecchi", "Still Montecchi")
            in carol.messages(),
            10,
            "carol to get Montecchi's message",
        )

    @defer.inlineCallbacks
    def test_kick(self) -> Generator[Any, Any, None]:
        """
        R-199, R-219 (SPEC C.2.6 step 5, E.5): carol, the room's owner,
        kicks Romeo's occupant (XEP-0045 8.2): the room tells everyone
        (307) and the gateway ends Romeo's chat with one BYE carrying
        C{Reason: SIP;cause=403} (RFC 3326; his chat ends as a remote BYE)
        and forgets him.
        """
        carol = yield self.xmppUser("carol")
        romeo = SIPUser()
        yield self.enter(romeo)
        occupant = f"{self.room}/Romeo"
        yield until(
            lambda: ("available", occupant) in carol.seen(), 10, "carol to see Romeo enter"
        )
        yield carol.kick(self.room, "Romeo")
        yield until(lambda: romeo.endings, 10, "Romeo's chat to end")
        self.assertEqual([e.cause for e in romeo.endings], [EndCause.REMOTE_BYE])
        [bye] = self.sipRequests.received("BYE")
        reasons = parseReasons(bye.headers.getLines("Reason"))
        self.assertEqual(
            [(r.protocol.upper(), r.cause) for r in reasons], [("SIP", 403)], bye.headers
        )
        kicks = [
            codes
            for kind, sender, codes, _ in carol.seenDetails()
            if kind == "unavailable" and sender == occupant
        ]
        self.assertTrue(kicks, carol.seenDetails())
        self.assertIn(307, kicks[0])
        yield until(lambda: not self.participants, 10, "the gateway to forget Romeo")

    @defer.inlineCallbacks
    def test_leave(self) -> Generator[Any, Any, None]:
        """
        F59-F62, R-044: Romeo hangs up (BYE): carol sees his occupant
        leave, his chat ends locally, the gateway forgets him.
        """
        carol = yield self.xmppUser("carol")
        romeo = SIPUser()
        session = yield self.enter(romeo)
        occupant = f"{self.room}/Romeo"
        yield until(
            lambda: ("available", occupant) in carol.seen(), 10, "carol to see Romeo enter"
        )
        session.end()
        yield until(
            lambda: ("unavailable", occupant) in carol.seen(), 10, "carol to see Romeo leave"
        )
        self.assertEqual([e.cause for e in romeo.endings], [EndCause.LOCAL])
        yield until(lambda: not self.participants, 10, "the gateway to forget Romeo")


class ProsodySIPToXMPPTests(SIPToXMPPScenariosMixin, TestCase):
    """
    Against Prosody 0.12 (room locking off: carol's room is usable at
    once).
    """

    def makeServer(self) -> Prosody:
        return Prosody(components=(USER_DOMAIN,), roomLocking=False, directory=self.mktemp())


class EjabberdSIPToXMPPTests(SIPToXMPPScenariosMixin, TestCase):
    """
    Against ejabberd 23.01.
    """

    def makeServer(self) -> Ejabberd:
        return Ejabberd(components=(USER_DOMAIN,), directory=self.mktemp())


class RoomRoutingProxy(KamailioProxy):
    """
    L{KamailioProxy}, but initial requests go to the gateway over TCP
    (C{$du}) whatever their Request-URI (C{sip:room@<muc domain>}, a name
    nothing resolves here) says.
    """

    def __init__(self, gatewayPort: int, directory: str | None = None) -> None:
        self.gatewayPort = gatewayPort
        super().__init__(directory)

    def _writeConfig(self) -> None:
        super()._writeConfig()
        with open(self.configPath) as f:
            config = f.read()
        anchor = '    remove_hf("Route");\n    record_route();\n'
        if anchor not in config:
            raise RuntimeError("kamailio_proxy.py configuration changed")
        config = config.replace(
            anchor,
            '    remove_hf("Route");\n'
            f'    $du = "sip:127.0.0.1:{self.gatewayPort};transport=tcp";\n'
            "    record_route();\n",
        )
        with open(self.configPath, "w") as f:
            f.write(config)


class KamailioSIPToXMPPTests(GatewayHarness, TestCase):
    """
    RFC 7702 section 6 with Kamailio 5.6 as the SIP user's record-routing
    proxy (RFC 3261 16.12, 12.1.1), against Prosody.
    """

    def makeServer(self) -> Prosody:
        return Prosody(components=(USER_DOMAIN,), roomLocking=False, directory=self.mktemp())

    @defer.inlineCallbacks
    def outboundProxy(self) -> Generator[Any, Any, SIPURI]:
        try:
            self.proxy = RoomRoutingProxy(self.sipPort, directory=self.mktemp())
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        yield deferToThread(self.proxy.start)
        self.addCleanup(deferToThread, self.proxy.stop)
        return SIPURI(
            "sip",
            "127.0.0.1",
            port=self.proxy.port,
            parameters=(("transport", "tcp"), ("lr", None)),
        )

    @defer.inlineCallbacks
    def test_enterTalkLeave(self) -> Generator[Any, Any, None]:
        """
        F35-F47, F59-F62 through Kamailio: the INVITE is record-routed
        (the SIP user's route set is the proxy), the 200 still comes from
        the focus (C{isfocus}); groupchat both ways (MSRP goes straight to
        the gateway); Romeo's BYE follows the route set, and carol sees him
        leave.
        """
        carol = yield self.xmppUser("carol")
        romeo = SIPUser()
        session = yield self.enter(romeo)
        dialog = session.dialog
        assert dialog is not None and dialog.inviteResponse is not None
        contact = dialog.inviteResponse.header("Contact")
        assert contact is not None
        self.assertTrue(NameAddr.fromString(contact).hasParameter("isfocus"), contact)
        self.assertTrue(dialog.routeSet, "the SIP user's route set is empty")
        for route in dialog.routeSet:
            self.assertEqual(route.uri.port, self.proxy.port)  # type: ignore[union-attr]
        occupant = f"{self.room}/Romeo"
        yield until(
            lambda: ("available", occupant) in carol.seen(), 10, "carol to see Romeo enter"
        )

        yield bounded(session.sendMessage("message/cpim", self.cpim("Through the proxy")))
        yield until(
            lambda: ("groupchat", occupant, "Through the proxy") in carol.messages(),
            10,
            "carol to get Romeo's message",
        )
        yield carol.send(self.room, "Heard you", "groupchat")
        yield until(lambda: romeo.messages, 10, "Romeo to get carol's message")
        [message] = self.received(romeo)
        self.assertEqual(message.body, b"Heard you")
        fromAddress = message.fromAddress
        assert fromAddress is not None
        self.assertEqual(fromAddress.uri, f"{self.roomURI};gr=carol")
        self.assertFreshDateTime(message)
        toRoom = [a.uri for a in message.toAddresses]

        session.end()
        yield until(
            lambda: ("unavailable", occupant) in carol.seen(), 10, "carol to see Romeo leave"
        )
        yield until(lambda: not self.participants, 10, "the gateway to forget Romeo")
        log = self.proxy.log()
        self.assertIn("RELAY INVITE initial", log)
        self.assertIn("RELAY ACK in-dialog", log)
        self.assertIn("RELAY BYE in-dialog", log)
        self.assertNotIn("NOROUTE", log)
        self.assertEqual(
            toRoom,
            [self.roomURI],
            "the CPIM To of a room message must be the room (RFC 7701 section 6.1)",
        )
