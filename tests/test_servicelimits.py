# -*- test-case-name: tests.test_servicelimits -*-
"""
L{stoxgw.service.makeService} hands the C{[sip]}, C{[msrp]} and C{[xmpp]}
limits (issue 11, items 1 and 2; C{docs/limits.md}) to the transports.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.config import parseConfig
from stoxgw.service import makeService

CONFIG = "[xmpp]\nuser_domain = sip.example.com\nsecret = hunter2\n"


class ServiceLimitsTests(SynchronousTestCase):
    """
    The configured limits reach the SIP transport, the MSRP endpoint and
    the component links.
    """

    def test_defaults(self) -> None:
        """
        Without the keys, the documented defaults apply.
        """
        service = makeService(parseConfig(CONFIG, "gw.conf"), MemoryReactorClock())
        sip = service.getServiceNamed("sip").transport
        self.assertEqual((sip.idleTimeout, sip.readTimeout), (120.0, 30.0))
        self.assertEqual(sip.maxOutputBytes, 1048576)
        assert sip.limits is not None
        self.assertEqual((sip.limits.perAddress, sip.limits.total), (50, 2000))
        msrp = service.getServiceNamed("msrp").endpoint
        self.assertEqual(msrp.unboundTimeout, 30.0)
        self.assertEqual(msrp.maxQueuedBytes, 1048576)
        assert msrp.limits is not None
        self.assertEqual((msrp.limits.perAddress, msrp.limits.total), (50, 2000))
        [link] = service.getServiceNamed("xmpp").links
        self.assertEqual(link.streamManager.writeTimeout, 60.0)

    def test_configured(self) -> None:
        """
        Configured values are used; a timeout of 0 turns it off.
        """
        config = parseConfig(
            CONFIG.replace("[xmpp]\n", "[xmpp]\nwrite_timeout = 0\n")
            + "[sip]\nidle_timeout = 0\nread_timeout = 5\nmax_output_bytes = 65536\n"
            "max_connections_per_address = 7\nmax_connections = 70\n"
            "[msrp]\nunbound_timeout = 0\nmax_output_bytes = 4096\n"
            "max_connections_per_address = 8\nmax_connections = 80\n",
            "gw.conf",
        )
        service = makeService(config, MemoryReactorClock())
        sip = service.getServiceNamed("sip").transport
        self.assertEqual(
            (sip.idleTimeout, sip.readTimeout, sip.maxOutputBytes), (None, 5.0, 65536)
        )
        assert sip.limits is not None
        self.assertEqual((sip.limits.perAddress, sip.limits.total), (7, 70))
        msrp = service.getServiceNamed("msrp").endpoint
        self.assertEqual((msrp.unboundTimeout, msrp.maxQueuedBytes), (None, 4096))
        assert msrp.limits is not None
        self.assertEqual((msrp.limits.perAddress, msrp.limits.total), (8, 80))
        [link] = service.getServiceNamed("xmpp").links
        self.assertIsNone(link.streamManager.writeTimeout)

    def test_badValues(self) -> None:
        """
        Caps below 1 and output bounds below 1 KiB are configuration
        errors naming the key.
        """
        from stoxgw.config import ConfigError

        error = self.assertRaises(
            ConfigError,
            parseConfig,
            CONFIG + "[sip]\nmax_connections = 0\n[msrp]\nmax_output_bytes = 10\n",
            "gw.conf",
        )
        self.assertEqual(len(error.problems), 2)
        self.assertIn("[sip] max_connections:", error.problems[0])
        self.assertIn("[msrp] max_output_bytes:", error.problems[1])
