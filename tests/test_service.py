# -*- test-case-name: tests.test_service -*-
"""
Tests for L{stoxgw.service}: the service tree built from a configuration.
"""

from __future__ import annotations

import gc
from typing import Any
from unittest.mock import Mock

from twisted.internet.address import IPv4Address

from twisted.application.service import Application, IServiceCollection
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from stoxgw import service
from stoxgw.config import parseConfig
from stoxgw.service import InterworkingService, MSRPService, SIPService, makeService
from stoxgw.sip.useragent import SIPTrust
from stoxgw.xmpp.component import ComponentLink

CONFIG = (
    "[xmpp]\nuser_domain = sip.example.com\nroom_domain = chat.sip.example.com\n"
    "secret = hunter2\nserver = 127.0.0.1\nport = 5347\n"
)


class UDPMemoryReactor(MemoryReactorClock):
    """
    A memory reactor that also records UDP listeners.
    """

    def __init__(self) -> None:
        super().__init__()
        self.udpPorts: list[tuple[int, str]] = []

    def listenUDP(self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192) -> Any:
        self.udpPorts.append((port, interface))
        listening = Mock()
        listening.getHost.return_value = IPv4Address("UDP", interface, port)
        listening.stopListening.return_value = None
        protocol.makeConnection(listening)
        return listening


class GatewayServiceTests(SynchronousTestCase):
    """
    L{makeService}.
    """

    def setUp(self) -> None:
        self.reactor = UDPMemoryReactor()
        self.config = parseConfig(CONFIG, "gw.conf")
        self.service = makeService(self.config, self.reactor)

    def test_children(self) -> None:
        """
        One named child per part of the gateway.
        """
        names = sorted(child.name for child in self.service)
        self.assertEqual(names, ["interworking", "msrp", "sip", "xmpp"])
        self.assertIsInstance(self.service.getServiceNamed("interworking"), InterworkingService)
        self.assertIsInstance(self.service.getServiceNamed("sip"), SIPService)
        self.assertIsInstance(self.service.getServiceNamed("msrp"), MSRPService)

    def test_oneLinkPerDomain(self) -> None:
        """
        The XMPP part has a component link per served domain.
        """
        xmpp = IServiceCollection(self.service.getServiceNamed("xmpp"))
        links = sorted(child.name for child in xmpp)
        self.assertEqual(links, ["chat.sip.example.com", "sip.example.com"])
        for link in xmpp:
            self.assertIsInstance(link, ComponentLink)

    def test_startConnects(self) -> None:
        """
        Starting the tree connects each link to the configured server and
        stopping it stops cleanly.
        """
        self.service.startService()
        self.assertEqual(
            [(host, port) for host, port, *_ in self.reactor.tcpClients],
            [("127.0.0.1", 5347), ("127.0.0.1", 5347)],
        )
        self.successResultOf(self.service.stopService())
        self.assertFalse(self.service.running)

    def test_listeners(self) -> None:
        """
        SIP listens on UDP and TCP 5060 and MSRP on TCP 2855 of the
        configured addresses; parts not built yet open nothing.
        """
        self.service.startService()
        self.assertEqual(
            sorted((port, interface) for port, _, _, interface in self.reactor.tcpServers),
            [(2855, "127.0.0.1"), (5060, "127.0.0.1")],
        )
        self.assertEqual(self.reactor.udpPorts, [(5060, "127.0.0.1")])
        self.assertEqual(self.reactor.sslServers, [])
        self.assertEqual(self.reactor.unixServers, [])
        self.successResultOf(self.service.stopService())

    def test_interworkingWired(self) -> None:
        """
        RFC 7702 section 6 is wired: the occupant service sits on the user
        domain's link, and once started the chat acceptor takes the SIP
        UA's INVITEs.
        """
        interworking = self.service.getServiceNamed("interworking")
        assert isinstance(interworking, InterworkingService)
        userLink = [
            link for link in self.service.getServiceNamed("xmpp").links
            if link.domain == "sip.example.com"
        ][0]
        self.assertIn(interworking.occupants, list(userLink.streamManager))
        self.assertIn(interworking.occupants, userLink.observers)
        ua = self.service.getServiceNamed("sip").userAgent

        def inviteHandlers() -> list[object]:
            return [handler for _, handler in ua._handlers.get("INVITE", [])]

        self.assertEqual(inviteHandlers(), [])
        self.service.startService()
        self.assertEqual(inviteHandlers(), [interworking.acceptor])
        self.successResultOf(self.service.stopService())

    def test_roomDomainWired(self) -> None:
        """
        RFC 7702 section 5 is wired when C{room_domain} is set: the room
        domain's link carries a L{MUCService} whose backend is the
        L{XMPPToSIP}, and the room disco handlers; the XMPPToSIP starts its
        chats through a L{ChatInitiator} on the gateway's SIP UA and MSRP
        endpoint.
        """
        from stoxgw.chat.session import ChatInitiator
        from stoxgw.interworking.xmpptosip import XMPPToSIP
        from stoxgw.xmpp.disco import RoomDisco
        from stoxgw.xmpp.room import MUCService

        interworking = self.service.getServiceNamed("interworking")
        assert isinstance(interworking, InterworkingService)
        [roomLink] = [
            link for link in self.service.getServiceNamed("xmpp").links
            if link.domain == "chat.sip.example.com"
        ]
        bridge = interworking.xmppToSIP
        rooms = interworking.rooms
        assert isinstance(bridge, XMPPToSIP) and isinstance(rooms, MUCService)
        self.assertIs(rooms.backend, bridge)
        self.assertIs(bridge.rooms, rooms)
        self.assertEqual((rooms.domain, bridge.roomDomain), ("chat.sip.example.com",) * 2)
        self.assertEqual(bridge.historySize, self.config.gateway.history_size)
        handlers = list(roomLink.streamManager)
        self.assertIn(rooms, handlers)
        self.assertTrue(any(isinstance(h, RoomDisco) for h in handlers))
        self.assertIsInstance(bridge.initiator, ChatInitiator)
        self.assertIs(bridge.initiator.ua, self.service.getServiceNamed("sip").userAgent)
        self.assertIs(bridge.initiator.endpoint, self.service.getServiceNamed("msrp").endpoint)
        userLink = [
            link for link in self.service.getServiceNamed("xmpp").links
            if link.domain == "sip.example.com"
        ][0]
        self.assertNotIn(rooms, list(userLink.streamManager))

    def test_noRoomDomain(self) -> None:
        """
        Without C{room_domain}, section 5 is not wired.
        """
        config = parseConfig(CONFIG.replace("room_domain = chat.sip.example.com\n", ""), "gw.conf")
        service = makeService(config, UDPMemoryReactor())
        interworking = service.getServiceNamed("interworking")
        assert isinstance(interworking, InterworkingService)
        self.assertIsNone(interworking.xmppToSIP)
        self.assertIsNone(interworking.rooms)

    def test_logObserverForTwistd(self) -> None:
        """
        Attached to a twistd application, the tree registers the configured
        log observer, which twistd then uses.
        """
        application = Application("stoxgw")
        self.service.setServiceParent(application)
        self.assertIs(application.getComponent(ILogObserver), self.service.logObserver)
        self.assertIsNotNone(self.service.logObserver)


class FakeGC:
    """
    The parts of the C{gc} module the service uses, recording calls.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...]]] = []

    def collect(self) -> int:
        self.calls.append(("collect", ()))
        return 0

    def freeze(self) -> None:
        self.calls.append(("freeze", ()))

    def set_threshold(self, *thresholds: int) -> None:
        self.calls.append(("set_threshold", thresholds))

    def get_freeze_count(self) -> int:
        return 1234


class FakeSignal:
    """
    The C{signal} module as far as the gateway uses it: records handlers.
    """

    SIGHUP = 1

    def __init__(self) -> None:
        self.handlers: dict[int, Any] = {}

    def signal(self, number: int, handler: Any) -> None:
        self.handlers[number] = handler


class GarbageCollectorTests(SynchronousTestCase):
    """
    C{[gateway] gc_thresholds}: the gateway that owns its process tunes
    the collector when it starts (docs/design.md, "Garbage collection"),
    and takes SIGHUP to reopen its log file.
    """

    def setUp(self) -> None:
        self.gc = FakeGC()
        self.patch(service, "gc", self.gc)
        self.signal = FakeSignal()
        self.patch(service, "signal", self.signal)
        self.reactor = UDPMemoryReactor()

    def test_tunedWhenOwningTheProcess(self) -> None:
        """
        Start-up objects are frozen after a collection, then the configured
        thresholds are set.
        """
        config = parseConfig(CONFIG + "[gateway]\ngc_thresholds = 5000, 20, 30\n", "gw.conf")
        gateway = service.GatewayService(config, self.reactor, ownsProcess=True)
        with capturedLogs() as events:
            gateway.startService()
        self.assertEqual(list(self.signal.handlers), [FakeSignal.SIGHUP])
        self.assertEqual(
            self.gc.calls,
            [("collect", ()), ("freeze", ()), ("set_threshold", (5000, 20, 30))],
        )
        self.assertIn(
            "Garbage collector thresholds (5000, 20, 30), 1234 start-up objects frozen",
            [formatEvent(event) for event in events],
        )
        self.successResultOf(gateway.stopService())

    def test_untouchedInsideAnotherProgram(self) -> None:
        """
        A gateway built with a reactor passed in (tests, embedding) leaves
        the process's collector alone.
        """
        gateway = makeService(parseConfig(CONFIG, "gw.conf"), self.reactor)
        gateway.startService()
        self.assertEqual(self.gc.calls, [])
        self.assertEqual(self.signal.handlers, {})
        self.successResultOf(gateway.stopService())


class RealCollectorTests(SynchronousTestCase):
    """
    L{GatewayService.tuneGarbageCollector} on Python's own collector (the
    tests above use a fake): the thresholds are those of C{[gateway]
    gc_thresholds} and the start-up objects are frozen.  The collector is
    put back as it was afterwards.
    """

    def test_tunes(self) -> None:
        thresholds = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *thresholds)
        self.addCleanup(gc.unfreeze)
        self.assertEqual(gc.get_freeze_count(), 0)
        config = parseConfig(CONFIG + "[gateway]\ngc_thresholds = 54321, 17, 19\n", "gw.conf")
        gateway = service.GatewayService(config, UDPMemoryReactor())
        with capturedLogs():
            gateway.tuneGarbageCollector()
        self.assertEqual(gc.get_threshold(), (54321, 17, 19))
        self.assertGreater(gc.get_freeze_count(), 0)


class SIPServiceTests(SynchronousTestCase):
    """
    L{SIPService} builds the admission and the resolver from C{[sip]}.
    """

    def build(self, extra: str = "") -> SIPService:
        config = parseConfig(CONFIG + extra, "gw.conf")
        return SIPService(config, UDPMemoryReactor())

    def test_trustOnly(self) -> None:
        """
        Without C{auth_realm}: L{SIPTrust} over C{trusted_peers} and
        C{trusted_tls_names}; the UA resolves with RFC 3263.
        """
        from stoxgw.sip.dns import RFC3263Resolver
        from stoxgw.sip.useragent import SIPTrust

        service = self.build(
            f"[sip]\ntrusted_tls_names = proxy.example.com\ntls_ca_file = {self.caFile()}\n"
        )
        self.assertIsInstance(service.admission, SIPTrust)
        assert isinstance(service.admission, SIPTrust)
        self.assertEqual(service.admission.tlsNames, frozenset({"proxy.example.com"}))
        self.assertIs(service.userAgent.admission, service.admission)
        self.assertIsInstance(service.userAgent.resolver, RFC3263Resolver)

    def caFile(self) -> str:
        """
        A CA bundle of one certificate, made now.
        """
        from twisted.internet import ssl

        from tests.msrp.test_tls import makeCertificate

        directory = self.mktemp()
        _, certificate = makeCertificate(directory, "ca")
        path = directory + "/ca-bundle.pem"
        with open(path, "wb") as f:
            f.write(ssl.Certificate(certificate.original).dumpPEM())
        return path

    def test_tlsClientCertificates(self) -> None:
        """
        RFC 5922 7.4: with C{tls_ca_file}, the transport holds its CA
        certificates, and the TLS listener asks clients for a certificate
        without requiring one (C{VERIFY_PEER}, not
        C{VERIFY_FAIL_IF_NO_PEER_CERT}); without it, the listener asks for
        none.
        """
        from OpenSSL import SSL

        from tests.msrp.test_tls import makeCertificate

        certificate, _ = makeCertificate(self.mktemp(), "gateway")
        caFile = self.caFile()
        tls = f"[sip]\ntls_port = 5061\ntls_certificate = {certificate}\ntls_private_key = {certificate}\n"
        service = self.build(tls + f"tls_ca_file = {caFile}\n")
        [ca] = service.transport.caCertificates
        with open(caFile, "rb") as f:
            self.assertEqual(ca.dumpPEM(), f.read())
        reactor = service.transport.reactor
        service.startService()
        options = reactor.sslServers[0][2]
        self.assertEqual(
            options.getContext().get_verify_mode(),
            SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE,
        )
        self.successResultOf(service.stopService())

        service = self.build(tls)
        self.assertEqual(service.transport.caCertificates, ())
        reactor = service.transport.reactor
        service.startService()
        options = reactor.sslServers[0][2]
        self.assertEqual(options.getContext().get_verify_mode(), SSL.VERIFY_NONE)
        self.successResultOf(service.stopService())

    def test_digest(self) -> None:
        """
        With C{auth_realm} and C{credentials_file}: L{DigestAdmission}
        with that realm, keeping the trusted peers.
        """
        from stoxgw.sip.admission import DigestAdmission

        path = self.mktemp()
        with open(path, "w") as f:
            f.write("alice:wonderland\n")
        service = self.build(f"[sip]\nauth_realm = gw.example.com\ncredentials_file = {path}\n")
        admission = service.admission
        assert isinstance(admission, DigestAdmission)
        self.assertEqual(admission.realm, "gw.example.com")
        self.assertTrue(admission.trust.isTrusted("127.0.0.1"))
        self.assertIs(service.userAgent.admission, admission)

    def test_staticRoutes(self) -> None:
        """
        C{static_routes} resolve without DNS; the transports are read when
        resolving (the listeners start after the resolver is built).
        """
        from stoxgw.sip.transport import Address, TransportKind
        from stoxgw.sip.uri import SIPURI

        service = self.build("[sip]\nstatic_routes = example.com=192.0.2.10:5070/tcp, b.example=192.0.2.11\n")
        resolve = service.resolver.resolve
        self.assertEqual(
            self.successResultOf(resolve(SIPURI("sip", "example.com", user="room"))),
            [Address(TransportKind.TCP, "192.0.2.10", 5070)],
        )
        self.assertEqual(service.resolver.transports, (TransportKind.UDP,))
        service.startService()
        self.assertEqual(service.resolver.transports, (TransportKind.UDP, TransportKind.TCP))
        self.assertEqual(
            self.successResultOf(resolve(SIPURI("sip", "b.example"))),
            [Address(TransportKind.UDP, "192.0.2.11", 5060)],
        )
        self.successResultOf(service.stopService())


class LivenessAndShutdownTests(SynchronousTestCase):
    """
    Issue 11: session timers and MSRP keepalives configured from the file;
    a stopping gateway BYEs its SIP users over their own connections and
    waits (bounded) for the answers before its parts stop.
    """

    def setUp(self) -> None:
        self.reactor = UDPMemoryReactor()
        self.service = makeService(parseConfig(CONFIG, "gw.conf"), self.reactor)

    def test_configured(self) -> None:
        """
        C{[sip] session_expires}/C{min_se} become the UA's session timer
        settings (0: none); C{[msrp] keepalive_interval} and
        C{transaction_timeout} the chats' keepalive.
        """
        from stoxgw.sip.sessiontimer import SessionTimerSettings

        sip = self.service.getServiceNamed("sip")
        self.assertEqual(
            sip.userAgent.settings.sessionTimer, SessionTimerSettings(1800, 90)
        )
        interworking = self.service.getServiceNamed("interworking")
        settings = interworking.acceptor.settings
        self.assertEqual((settings.keepaliveInterval, settings.keepaliveTimeout), (30, 30))
        self.assertIs(interworking.xmppToSIP.initiator.settings, settings)
        off = makeService(
            parseConfig(CONFIG + "[sip]\nsession_expires = 0\n", "gw.conf"),
            UDPMemoryReactor(),
        )
        self.assertIsNone(off.getServiceNamed("sip").userAgent.settings.sessionTimer)

    def dialogOverTCP(self) -> tuple[Any, Any, Any]:
        """
        Start the service with a test INVITE handler in front, and let a
        SIP user at 198.51.100.7 (listening on 5070) set up a dialog over
        a TCP connection it opened.

        @return: The dialog, the user's connection and its transport.
        """
        from tests.sip.test_transport import streamConnection
        from tests.sip.test_useragent import InviteRecorder, tcpRequest

        sip = self.service.getServiceNamed("sip")
        handler = InviteRecorder("accept")
        sip.userAgent.addHandler("INVITE", handler)
        sip.userAgent.admission = SIPTrust.fromStrings(["198.51.100.0/24"])
        self.service.startService()
        connection, string = streamConnection(sip.transport, ("198.51.100.7", 40123))
        connection.dataReceived(tcpRequest())
        [dialog] = handler.dialogs
        connection.dataReceived(
            tcpRequest("ACK", branch="z9hG4bKack", toTag=dialog.localTag)
        )
        string.clear()
        return dialog, connection, string

    def test_stopWaitsForBye(self) -> None:
        """
        stopService BYEs the user over its own connection and does not
        stop the parts (XMPP links included) until the BYE is answered.
        """
        from stoxgw.sip.framing import SIPStreamParser

        dialog, connection, string = self.dialogOverTCP()
        stopping = self.service.stopService()
        [bye] = SIPStreamParser().feed(string.value())
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(self.reactor.tcpClients[2:], [])
        self.assertNoResult(stopping)
        self.assertTrue(self.service.getServiceNamed("xmpp").running)
        self.assertTrue(self.service.getServiceNamed("sip").running)
        connection.dataReceived(bye.makeResponse(200).serialize())
        self.successResultOf(stopping)
        self.assertFalse(self.service.getServiceNamed("xmpp").running)

    def test_stopBounded(self) -> None:
        """
        A user that never answers the BYE holds the stop for
        C{shutdown_grace} (5 s) at most.
        """
        self.dialogOverTCP()
        stopping = self.service.stopService()
        self.reactor.advance(4.9)
        self.assertNoResult(stopping)
        with capturedLogs() as events:
            self.reactor.advance(0.1)
        self.successResultOf(stopping)
        self.assertFalse(self.service.running)
        self.assertTrue(
            any("not every BYE" in e.get("log_format", "") for e in events)
        )


class NativeRoomsWiringTests(SynchronousTestCase):
    """
    C{[rooms] domain}: the focus on the gateway's UA, behind the routers
    (docs/native-rooms.md).
    """

    ROOMS = "[rooms]\ndomain = chat.sip.example.com\npersistent_rooms = lobby Hello\n"

    def build(self, extra: str = "") -> Any:
        reactor = UDPMemoryReactor()
        config = parseConfig(CONFIG + self.ROOMS + extra, "gw.conf")
        return makeService(config, reactor), reactor

    def test_wired(self) -> None:
        """
        A C{rooms} child holds the L{Focus}; the chat acceptor's offers,
        the REFER agent's handler and (once started) the C{conference}
        package are routers in front of the section 6 bridge; the
        persistent room exists.
        """
        from stoxgw.focus.focus import Focus
        from stoxgw.focus.routing import ConferenceRouter, OfferRouter, ReferRouter
        from stoxgw.service import FocusService

        service, _ = self.build()
        rooms = service.getServiceNamed("rooms")
        assert isinstance(rooms, FocusService)
        self.assertIsInstance(rooms.focus, Focus)
        self.assertEqual(list(rooms.focus.rooms), ["lobby"])
        self.assertIs(rooms.focus.ua, service.getServiceNamed("sip").userAgent)
        interworking = service.getServiceNamed("interworking")
        self.assertIsInstance(interworking.acceptor.offers, OfferRouter)
        self.assertIs(interworking.acceptor.offers.fallback, interworking.sipToXMPP)
        self.assertIsInstance(interworking.referAgent.handler, ReferRouter)
        service.startService()
        package = interworking.events.packages["conference"]
        self.assertIsInstance(package, ConferenceRouter)
        self.assertIs(package.fallback, interworking.conferencePackage)
        self.successResultOf(service.stopService())

    def test_selfRouteAndTrust(self) -> None:
        """
        With C{[xmpp] room_domain} too, the gateway INVITEs its own rooms:
        the rooms' domain routes to its own SIP listener (TCP) and its own
        address is trusted.
        """
        import ipaddress

        from stoxgw.sip.dns import StaticRoute
        from stoxgw.sip.transport import TransportKind

        service, _ = self.build()
        sip = service.getServiceNamed("sip")
        self.assertEqual(
            sip.resolver.staticRoutes["chat.sip.example.com"],
            StaticRoute("127.0.0.1", 5060, TransportKind.TCP),
        )
        self.assertIn(ipaddress.ip_network("127.0.0.1/32"), sip.admission.networks)

    def test_noSelfRouteThroughAProxy(self) -> None:
        """
        With an outbound proxy (which routes the domain), or without a room
        domain, no self route.
        """
        service, _ = self.build("[sip]\noutbound_proxy = sip:proxy.example.com\n")
        self.assertNotIn("chat.sip.example.com", service.getServiceNamed("sip").resolver.staticRoutes)
        reactor = UDPMemoryReactor()
        config = parseConfig(
            CONFIG.replace("room_domain = chat.sip.example.com\n", "") + self.ROOMS.replace("chat.sip", "rooms.sip"),
            "gw.conf",
        )
        service = makeService(config, reactor)
        self.assertEqual(service.getServiceNamed("sip").resolver.staticRoutes, {})
