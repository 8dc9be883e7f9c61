# -*- test-case-name: tests.interop.test_sip_kamailio -*-
"""
Two SIP UA cores talk through a real record-routing Kamailio proxy
(L{tests.interop.kamailio_proxy}) on 127.0.0.1.

The caller sends its INVITE to the proxy as outbound proxy; the proxy
record-routes it to the callee, which copies Record-Route into its 2xx
(RFC 3261 12.1.1); both sides build their route sets (12.1.1, 12.1.2) and
the callee's BYE follows the route set through the proxy (12.2.1.1,
16.12), which drops in-dialog requests that do not (PEERS.md).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from stoxgw.sip.dialog import TerminationReason
from stoxgw.sip.transport import SIPTransport, TransportKind
from stoxgw.sip.uri import SIPURI, parseNameAddr
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings
from tests.interop.kamailio_proxy import KamailioProxy
from tests.interop.peers import PeerUnavailable
from tests.interop.test_sip_sipp import MSRP_OFFER, DialogWatcher, FocusHandler


class KamailioProxyTests(TestCase):
    """
    INVITE and BYE through Kamailio's record_route()/loose_route().
    """

    timeout = 60

    def setUp(self) -> Any:
        try:
            self.proxy = KamailioProxy()
        except PeerUnavailable as e:
            raise self.skipTest(str(e))
        d = deferToThread(self.proxy.start)
        return d

    def tearDown(self) -> Any:
        return deferToThread(self.proxy.stop)

    def userAgent(self, **settings: Any) -> tuple[SIPUserAgent, SIPTransport]:
        transport = SIPTransport(reactor, "127.0.0.1")
        transport.listenUDP(0)
        transport.listenTCP(0)
        self.addCleanup(transport.stopListening)
        ua = SIPUserAgent(
            reactor,
            transport,
            settings=UserAgentSettings(**settings),
            admission=SIPTrust.fromStrings(["127.0.0.1"]),
        )
        self.addCleanup(ua.close)
        return ua, transport

    @inlineCallbacks
    def _call(
        self, callerTransport: TransportKind, calleeTransport: TransportKind
    ) -> Any:
        params: tuple[tuple[str, str | None], ...] = (("lr", None),)
        if callerTransport is TransportKind.TCP:
            params += (("transport", "tcp"),)
        caller, _ = self.userAgent(
            outboundProxy=SIPURI(
                "sip", "127.0.0.1", port=self.proxy.port, parameters=params
            )
        )
        callee, calleeTransportLayer = self.userAgent()
        focus = FocusHandler(callee)
        callee.addHandler("INVITE", focus)
        target = SIPURI(
            "sip",
            "127.0.0.1",
            user="room",
            port=calleeTransportLayer.ports[calleeTransport],
            parameters=(("transport", calleeTransport.uriParameter),),
        )
        watcher = DialogWatcher()
        dialog = yield caller.invite(
            target,
            parseNameAddr("<sip:juliet@xmpp.example>"),
            MSRP_OFFER,
            handler=watcher,
        )
        self.assertTrue(dialog.routeSet, "caller's route set is empty")
        for route in dialog.routeSet:
            self.assertEqual(route.uri.port, self.proxy.port)  # type: ignore[union-attr]
        calleeDialog = yield focus.watcher.confirmed
        self.assertEqual(
            [str(r.uri) for r in calleeDialog.routeSet],
            [str(r.uri) for r in reversed(dialog.routeSet)],
        )
        # The callee hangs up: its BYE must go through the proxy.
        response = yield calleeDialog.bye()
        self.assertEqual(response.status, 200)
        reason = yield watcher.terminated
        self.assertIs(reason, TerminationReason.REMOTE_BYE)
        log = self.proxy.log()
        self.assertIn("RELAY INVITE initial", log)
        self.assertIn("RELAY BYE in-dialog", log)
        self.assertNotIn("NOROUTE", log)

    def test_udp(self) -> None:
        """
        RFC 3261 12.1, 12.2.1.1, 16.12: caller and callee on UDP.
        """
        return self._call(TransportKind.UDP, TransportKind.UDP)  # type: ignore[no-any-return]

    def test_tcpToUdp(self) -> None:
        """
        The caller on TCP, the callee on UDP: the proxy double
        record-routes (one entry per side) and both route sets work.
        """
        return self._call(TransportKind.TCP, TransportKind.UDP)  # type: ignore[no-any-return]
