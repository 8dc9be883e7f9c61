# -*- test-case-name: tests.interop.test_sip_subscribe -*-
"""
The RFC 6665 notifier (L{stoxgw.sip.subscription}) against SIPp 3.6.1 over
real UDP and TCP sockets on 127.0.0.1, directly and through a real
record-routing Kamailio proxy (L{tests.interop.kamailio_proxy}).

SIPp (C{uac_subscribe_conference.xml}) SUBSCRIBEs to C{Event: conference}
at the gateway acting as conference notifier, whose test conference has
two users; it accepts the first NOTIFY before or after the 200 (RFC 6665
section 4.1.2.4), checks its conference-info content type, C{active}
state and a full document with a version (RFC 4575 sections 4.3 and 5.2),
answers 200, unsubscribes with C{Expires: 0} and gets the 200 and the
terminated NOTIFY (RFC 6665 section 4.2.1.4).  Through Kamailio the
gateway copies Record-Route into its 200 and sends both NOTIFYs along the
route set (RFC 3261 12.1.1, 12.2.1.1; PEERS.md).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from stoxgw.formats.conferenceinfo import (
    ConferenceDescription,
    ConferenceInfo,
    User,
    Users,
)
from stoxgw.sip.subscription import (
    ConferenceNotifier,
    ConferencePackage,
    SIPEvents,
    SubscriptionReason,
)
from stoxgw.sip.message import SIPResponse
from stoxgw.sip.transport import Flow, SIPTransport, TransportKind
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings
from tests.interop.kamailio_proxy import KamailioProxy
from tests.interop.peers import PeerUnavailable
from tests.interop.sipp import SIPpResult, freeUDPAndTCPPort, runSIPp

ROOM = "sip:room@127.0.0.1"


def roomState() -> ConferenceInfo:
    """
    A full conference state with two users (RFC 7702 entity convention).
    """
    return ConferenceInfo(
        ROOM,
        description=ConferenceDescription(subject="Today in Verona"),
        users=Users(
            (
                User(f"{ROOM};gr=Romeo", displayText="Romeo", nickname="Romeo"),
                User(f"{ROOM};gr=JuliC", displayText="JuliC", nickname="JuliC"),
            )
        ),
    )


def delayResponses(transport: SIPTransport, method: str, delay: float = 0.1) -> None:
    """
    Hold back 2xx responses to C{method} on C{transport} (a test shim that
    makes the notifier's NOTIFY overtake its 200).
    """
    send = transport.sendResponse

    def delayed(response: SIPResponse, flow: Flow) -> Deferred[Flow]:
        if response.isSuccess and response.cseq.method == method:
            d: Deferred[Flow] = Deferred()
            reactor.callLater(  # type: ignore[attr-defined]
                delay, lambda: send(response, flow).chainDeferred(d)
            )
            return d
        return send(response, flow)

    transport.sendResponse = delayed  # type: ignore[method-assign]


class SubscribeInteropTests(TestCase):
    """
    Real SIPp (and Kamailio), real sockets, bounded waits.
    """

    timeout = 90

    def gateway(
        self,
    ) -> tuple[SIPUserAgent, SIPTransport, ConferenceNotifier, list[Any]]:
        """
        A UA on UDP and TCP serving the conference package for C{room}.
        """
        transport = SIPTransport(reactor, "127.0.0.1")
        transport.listenUDP(0)
        transport.listenTCP(0)
        self.addCleanup(transport.stopListening)
        ua = SIPUserAgent(
            reactor,
            transport,
            settings=UserAgentSettings(contactUser="gw"),
            admission=SIPTrust.fromStrings(["127.0.0.1/32"]),
        )
        self.addCleanup(ua.close)
        events = SIPEvents(ua)
        self.addCleanup(events.close)
        conference = ConferenceNotifier(roomState())
        ended: list[Any] = []

        def lookup(request: Any) -> ConferenceNotifier | None:
            return conference if getattr(request.uri, "user", None) == "room" else None

        package = ConferencePackage(lookup)
        original = package.subscriptionEnded

        def subscriptionEnded(subscription: Any, reason: SubscriptionReason) -> None:
            ended.append((subscription, reason))
            original(subscription, reason)

        package.subscriptionEnded = subscriptionEnded  # type: ignore[method-assign]
        events.addPackage(package)
        return ua, transport, conference, ended

    def run_sipp(self, *args: Any, **kwargs: Any) -> Deferred[SIPpResult]:
        try:
            return runSIPp(reactor, *args, **kwargs)
        except PeerUnavailable as e:
            raise self.skipTest(str(e))

    @inlineCallbacks
    def _subscribe(
        self,
        kind: TransportKind,
        sippTransport: str,
        proxy: KamailioProxy | None = None,
        notifyFirst: bool = False,
    ) -> Any:
        ua, transport, conference, ended = self.gateway()
        if notifyFirst:
            delayResponses(transport, "SUBSCRIBE")
        extra: list[str] = []
        if proxy is not None:
            extra = ["-rsa", f"127.0.0.1:{proxy.port}"]
        result = yield self.run_sipp(
            "uac_subscribe_conference.xml",
            remote=f"127.0.0.1:{transport.ports[kind]}",
            localPort=freeUDPAndTCPPort(),
            transport=sippTransport,
            service="room",
            timeout=20,
            extra=extra,
        )
        self.assertEqual(result.exitCode, 0, result.describe())
        self.assertEqual(len(ended), 1, result.describe())
        self.assertIs(ended[0][1], SubscriptionReason.TIMEOUT)
        self.assertEqual(conference.subscriptions, [])
        logs = "".join(text for name, text in result.logs.items() if "_logs" in name)
        if notifyFirst:
            self.assertIn("NOTIFY before 200", logs, result.describe())
            self.assertIn("terminated NOTIFY before 200", logs, result.describe())
        else:
            self.assertIn("NOTIFY after 200", logs, result.describe())
        return result

    def test_subscribeUDP(self) -> Any:
        """
        RFC 6665 4.2.1, 4.2.1.4; RFC 4575; R-176, R-177, R-181 over UDP.
        """
        return self._subscribe(TransportKind.UDP, "u1")

    def test_subscribeNotifyFirstUDP(self) -> Any:
        """
        RFC 6665 4.1.2.4: the 200s to SUBSCRIBE held back 100 ms, so both
        NOTIFYs reach SIPp first; its scenario takes that order too.
        """
        return self._subscribe(TransportKind.UDP, "u1", notifyFirst=True)

    def test_subscribeNotifyFirstTCP(self) -> Any:
        """
        The same over TCP.
        """
        return self._subscribe(TransportKind.TCP, "t1", notifyFirst=True)

    def test_subscribeTCP(self) -> Any:
        """
        The same over TCP (the NOTIFYs go to SIPp's Contact).
        """
        return self._subscribe(TransportKind.TCP, "t1")

    @inlineCallbacks
    def test_subscribeThroughKamailio(self) -> Any:
        """
        RFC 3261 12.1.1, 12.2.1.1, 16.12: through a record-routing
        Kamailio, the gateway's NOTIFYs follow the route set (Kamailio
        answers in-dialog requests without its Route with 404 and logs
        NOROUTE).
        """
        try:
            proxy = KamailioProxy()
        except PeerUnavailable as e:
            raise self.skipTest(str(e))
        yield deferToThread(proxy.start)
        self.addCleanup(deferToThread, proxy.stop)
        yield self._subscribe(TransportKind.UDP, "u1", proxy)
        log = proxy.log()
        self.assertIn("RELAY SUBSCRIBE initial", log)
        self.assertIn("RELAY NOTIFY in-dialog", log)
        self.assertIn("RELAY SUBSCRIBE in-dialog", log)
        self.assertNotIn("NOROUTE", log)
