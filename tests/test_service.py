# -*- test-case-name: tests.test_service -*-
"""
Tests for L{stoxgw.service}: the service tree built from a configuration.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import Mock

from twisted.internet.address import IPv4Address

from twisted.application.service import Application, IServiceCollection
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.config import parseConfig
from stoxgw.service import MSRPService, PendingService, SIPService, makeService
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
        self.assertIsInstance(self.service.getServiceNamed("interworking"), PendingService)
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

    def test_logObserverForTwistd(self) -> None:
        """
        Attached to a twistd application, the tree registers the configured
        log observer, which twistd then uses.
        """
        application = Application("stoxgw")
        self.service.setServiceParent(application)
        self.assertIs(application.getComponent(ILogObserver), self.service.logObserver)
        self.assertIsNotNone(self.service.logObserver)
