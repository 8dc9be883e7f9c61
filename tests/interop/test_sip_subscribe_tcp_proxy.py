# -*- test-case-name: tests.interop.test_sip_subscribe_tcp_proxy -*-
"""
The RFC 6665 notifier (L{stoxgw.sip.subscription}) through a real
record-routing Kamailio 5.6 proxy with SIPp 3.6.1 on B{TCP} to the proxy,
the gateway behind it on TCP or UDP.

The flow and its checks are those of L{tests.interop.test_sip_subscribe}
(the same scenario, C{uac_subscribe_conference.xml}, and the same helpers,
reused by import): SIPp SUBSCRIBEs to C{Event: conference} through the
proxy (C{-rsa}), takes the first NOTIFY before or after the 200 (RFC 6665
section 4.1.2.4), unsubscribes with C{Expires: 0} along the route set and
gets the terminated NOTIFY.

 - gateway on TCP: the Request-URI says C{transport=TCP} and Kamailio
   relays over TCP on both sides (one Record-Route).
 - gateway on UDP: a variant of L{KamailioProxy} sends initial requests
   to the gateway over UDP (C{$du}), so the proxy changes transport and
   record-routes twice (C{enable_double_rr}, RFC 3261 16.6 step 4 / RFC
   5658): the gateway must send its NOTIFYs over UDP to the Route entry
   facing it, and Kamailio takes them to SIPp over TCP.

Every in-dialog request must pass the proxy (Kamailio logs C{RELAY
<method> in-dialog}, and C{NOROUTE} for one that bypasses it); the test
also checks on the gateway's side that both NOTIFYs went to the proxy's
port with a C{Route} header.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from stoxgw.sip.message import SIPRequest
from stoxgw.sip.transport import Address, Flow, SIPTransport, TransportKind
from tests.interop import test_sip_subscribe as base
from tests.interop.kamailio_proxy import KamailioProxy
from tests.interop.peers import PeerUnavailable


class UDPTowardsGatewayProxy(KamailioProxy):
    """
    L{KamailioProxy}, but initial requests go to the Request-URI's host
    and port over UDP whatever its C{transport} parameter says (so SIPp
    can reach it over TCP while the gateway listens on UDP).
    """

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
            '    $du = "sip:" + $rd + ":" + $rp + ";transport=udp";\n'
            "    record_route();\n",
        )
        with open(self.configPath, "w") as f:
            f.write(config)


def recordRequests(transport: SIPTransport) -> list[tuple[SIPRequest, Address]]:
    """
    Keep every request C{transport} sends with its destination (a test
    shim wrapping C{sendMessage}).
    """
    sent: list[tuple[SIPRequest, Address]] = []
    send = transport.sendMessage

    def recording(message: Any, destination: Address) -> Deferred[Flow]:
        if isinstance(message, SIPRequest):
            sent.append((message, destination))
        return send(message, destination)

    transport.sendMessage = recording  # type: ignore[method-assign]
    return sent


class SubscribeTCPProxyTests(TestCase):
    """
    Real SIPp on TCP, real Kamailio, real sockets, bounded waits.
    """

    timeout = 90

    # The helpers of test_sip_subscribe (the same flow and assertions);
    # its test case is reached through the module only, never bound to a
    # module-level name here, so trial does not run its tests again.
    run_sipp = base.SubscribeInteropTests.run_sipp
    _subscribe = base.SubscribeInteropTests._subscribe

    def gateway(self) -> Any:
        """
        L{tests.interop.test_sip_subscribe}'s gateway, with the requests
        it sends recorded in C{self.sent}.
        """
        gateway = base.SubscribeInteropTests.gateway
        ua, transport, conference, ended = gateway(self)  # type: ignore[arg-type]
        self.sent = recordRequests(transport)
        # The flows requests arrived on: the proxy's own connections.
        self.flows: list[Flow] = []
        user = transport.user
        assert user is not None
        deliver = user.messageReceived

        def receiving(message: Any, flow: Flow) -> None:
            self.flows.append(flow)
            deliver(message, flow)

        user.messageReceived = receiving  # type: ignore[method-assign]
        return ua, transport, conference, ended

    @inlineCallbacks
    def _throughProxy(
        self,
        kind: TransportKind,
        proxyClass: type[KamailioProxy],
        notifyFirst: bool = False,
    ) -> Any:
        try:
            proxy = proxyClass()
        except PeerUnavailable as e:
            raise self.skipTest(str(e))
        yield deferToThread(proxy.start)
        self.addCleanup(deferToThread, proxy.stop)
        yield self._subscribe(  # type: ignore[misc]
            kind, "t1", proxy, notifyFirst=notifyFirst
        )
        log = proxy.log()
        self.assertIn("RELAY SUBSCRIBE initial", log)
        self.assertIn("RELAY NOTIFY in-dialog", log)
        self.assertIn("RELAY SUBSCRIBE in-dialog", log)
        self.assertNotIn("NOROUTE", log)
        notifies = [(r, d) for r, d in self.sent if r.method == "NOTIFY"]
        self.assertEqual(len(notifies), 2, self.sent)
        # To the proxy: its listening port, or over a TCP connection the
        # proxy opened, which names it (the first Route is the address in
        # the proxy's Via, RFC 5923 section 2).
        ports = {proxy.port} | {
            flow.source.port for flow in self.flows if flow.connection is not None
        }
        for request, destination in notifies:
            self.assertEqual(
                (destination.host, destination.transport), ("127.0.0.1", kind)
            )
            self.assertIn(destination.port, ports)
            routes = request.headers.getLines("Route")
            self.assertTrue(routes, request)
            self.assertIn(f"127.0.0.1:{proxy.port}", routes[0])
        return log

    def test_sippTCPGatewayTCP(self) -> Any:
        """
        RFC 3261 12.1.1, 12.2.1.1, 16.12; RFC 6665 4.2.1, 4.2.1.4: SIPp on
        TCP to Kamailio, Kamailio on TCP to the gateway; the NOTIFYs follow
        the route set over TCP.
        """
        return self._throughProxy(TransportKind.TCP, KamailioProxy)

    def test_sippTCPGatewayTCPNotifyFirst(self) -> Any:
        """
        The same with the 200s to SUBSCRIBE held back 100 ms, so both
        NOTIFYs pass the proxy before them (RFC 6665 4.1.2.4).
        """
        return self._throughProxy(TransportKind.TCP, KamailioProxy, notifyFirst=True)

    @inlineCallbacks
    def test_sippTCPGatewayUDP(self) -> Any:
        """
        RFC 3261 16.6, RFC 5658: SIPp on TCP, the gateway on UDP behind a
        proxy that changes transport and record-routes twice; the gateway's
        NOTIFYs go over UDP to the first Route (the proxy's UDP side, no
        transport parameter) and carry the second one (its TCP side,
        C{transport=tcp}) on to SIPp.
        """
        log = yield self._throughProxy(TransportKind.UDP, UDPTowardsGatewayProxy)
        notifies = [r for r, _ in self.sent if r.method == "NOTIFY"]
        for request in notifies:
            # Kamailio's UDP-side entry has no transport parameter.
            routes = [
                route.lower()
                for line in request.headers.getLines("Route")
                for route in line.split(",")
            ]
            self.assertEqual(len(routes), 2, routes)
            self.assertNotIn("transport=tcp", routes[0])
            self.assertIn("transport=tcp", routes[1])
        return log

    def test_sippTCPGatewayUDPNotifyFirst(self) -> Any:
        """
        The same with the NOTIFYs overtaking the 200s.
        """
        return self._throughProxy(
            TransportKind.UDP, UDPTowardsGatewayProxy, notifyFirst=True
        )
