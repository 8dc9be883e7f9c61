# -*- test-case-name: tests.interop.test_sip_tls_identity -*-
"""
Trust by TLS identity on connections the peer opened (RFC 5922 sections
7.1 and 7.4, docs/design.md "Trust"): pjsua2 (PJSIP 2.15.1 with its bundled
OpenSSL) connects to the gateway's TLS listener on 127.0.0.1 and presents
a client certificate, which the listener asks for and verifies against
its CA certificates (C{[sip] tls_ca_file}).

A test CA is made at run time (L{tests.sip.test_transport.Authority}; no
key is committed); it issues the gateway's certificate (SAN
C{gateway.stoxgw.test} and C{IP:127.0.0.1}, which pjsua2 verifies) and
pjsua2's.  pjsua2's TLS transport uses its one certificate both as
server and as client (PJSIP's C{certFile}), so L{startAgent}'s C{cert}
is also its client certificate.  The gateway trusts no network, has
digest authentication on, and trusts the TLS name
C{proxy.stoxgw.test}:

 - pjsua2 with a certificate for C{proxy.stoxgw.test}: OPTIONS gets 200
   without a challenge, admitted by that name;
 - with a valid certificate for another name, or with none: 401;
 - with a certificate from an unknown CA: the gateway refuses the
   handshake, no request reaches it, and pjsua2's OPTIONS fails;
 - the gateway's own TLS connection to pjsua2 verifies pjsua2's server
   certificate against the same CA file (no system trust store).
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from stoxgw.sip.admission import DigestAdmission
from stoxgw.sip.message import SIPRequest, parseDatagram
from stoxgw.sip.transport import Flow, SIPTransport, TransportKind, loadCertificates
from stoxgw.sip.uri import SIPURI, parseNameAddr
from stoxgw.sip.useragent import (
    AdmissionDecision,
    IRequestAdmission,
    SIPTrust,
    SIPUserAgent,
    UserAgentSettings,
)
from tests.interop.peers import PeerUnavailable
from tests.interop.pjsua2peer import PJSUA2Agent, startAgent
from tests.interop.test_sip_pjsua2 import within
from tests.sip.test_transport import Authority

#: The TLS name the gateway trusts.
TRUSTED_NAME = "proxy.stoxgw.test"


@implementer(IRequestAdmission)
class RecordingAdmission:
    """
    Wraps an admission and records its decisions.

    @ivar decisions: C{(method, decision)} for each request decided on.
    """

    def __init__(self, admission: IRequestAdmission) -> None:
        self.admission = admission
        self.decisions: list[tuple[str, AdmissionDecision]] = []

    def decide(self, request: SIPRequest, flow: Flow) -> AdmissionDecision:
        decision = self.admission.decide(request, flow)
        self.decisions.append((request.method, decision))
        return decision


class TLSClientIdentityTests(TestCase):
    """
    pjsua2 presents client certificates to the gateway's TLS listener.
    """

    timeout = 60

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        self.authority = Authority.make("stoxgw interop CA")
        self.caFile = self.authority.writeBundle(self.directory)
        self.gatewayPEM, _ = self.authority.issue(
            self.directory, "gateway", dnsNames=["gateway.stoxgw.test"]
        )
        self.events: list[LogEvent] = []
        observer = implementer(ILogObserver)(lambda event: self.events.append(event))
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def gateway(self) -> tuple[SIPUserAgent, RecordingAdmission]:
        """
        A UA listening for TLS, verifying client certificates against the
        CA file, trusting no network and only L{TRUSTED_NAME}, with digest
        on for everyone else.
        """
        transport = SIPTransport(
            reactor, "127.0.0.1", caCertificates=loadCertificates(self.caFile)
        )
        transport.listenTLS(0, self.gatewayPEM)
        self.addCleanup(transport.stopListening)
        admission = RecordingAdmission(
            DigestAdmission(
                "gw.stoxgw.test",
                {"alice": "wonderland"},
                trust=SIPTrust(tlsNames=frozenset({TRUSTED_NAME})),
                clock=reactor.seconds,
            )
        )
        ua = SIPUserAgent(
            reactor,
            transport,
            settings=UserAgentSettings(contactUser="gw"),
            admission=admission,
        )
        self.addCleanup(ua.close)
        return ua, admission

    @inlineCallbacks
    def agent(self, certificate: str | None) -> Any:
        """
        Start pjsua2 over TLS, verifying the gateway against the CA file
        and presenting C{certificate} (a PEM file with its key) if given;
        fire with it and its port.
        """
        try:
            agent = startAgent(reactor, "tls", cert=certificate, ca=self.caFile)
        except PeerUnavailable as e:
            raise self.skipTest(str(e))
        self.addCleanup(agent.stop)
        ready = yield agent.waitForEvent("ready", timeout=15)
        return agent, ready["port"]

    @inlineCallbacks
    def options(self, certificate: str | None) -> Any:
        """
        pjsua2 (with C{certificate}) sends OPTIONS to the gateway; fire
        with the gateway's admission record, pjsua2 and its
        C{optionsResponse} event.
        """
        ua, admission = self.gateway()
        agent, _ = yield self.agent(certificate)
        port = ua.transport.ports[TransportKind.TLS]
        agent.send("options", uri=f"sips:room@127.0.0.1:{port};transport=tls")
        event = yield agent.waitForEvent("optionsResponse", timeout=15)
        return admission, agent, event

    def handshakeFailures(self) -> list[LogEvent]:
        """
        The gateway's log events for refused TLS handshakes.
        """
        return [
            e
            for e in self.events
            if e.get("log_format", "").startswith("SIP TLS handshake")
        ]

    @inlineCallbacks
    def test_trustedName(self) -> None:
        """
        RFC 5922 7.1, 7.4: a client certificate from the configured CA
        naming a trusted peer (subjectAltName DNS name) is verified, and
        the OPTIONS is admitted by that name without a digest challenge:
        200.
        """
        certificate, _ = self.authority.issue(
            self.directory, "proxy", dnsNames=[TRUSTED_NAME]
        )
        admission, agent, event = yield self.options(certificate)
        self.assertEqual(event["status"], 200, agent.describe())
        [(method, decision)] = admission.decisions
        self.assertEqual(method, "OPTIONS")
        self.assertTrue(decision.admitted)
        self.assertEqual(decision.peerName, TRUSTED_NAME)
        self.assertEqual(self.handshakeFailures(), [])

    @inlineCallbacks
    def test_trustedSIPURIName(self) -> None:
        """
        RFC 5922 7.1: the host of a C{sip:} subjectAltName URI is a name
        too (the CN is not, beside a subjectAltName): admitted by it.
        """
        certificate, _ = self.authority.issue(
            self.directory,
            "proxy-uri",
            sipURIs=[f"sip:{TRUSTED_NAME}"],
            commonName="not-trusted.stoxgw.test",
        )
        admission, agent, event = yield self.options(certificate)
        self.assertEqual(event["status"], 200, agent.describe())
        [(_, decision)] = admission.decisions
        self.assertEqual(decision.peerName, TRUSTED_NAME)

    @inlineCallbacks
    def test_untrustedName(self) -> None:
        """
        docs/design.md "Trust": a valid certificate for a name that is not
        trusted gives no trust; the OPTIONS is challenged (401, RFC 3261
        22.2).
        """
        certificate, _ = self.authority.issue(
            self.directory, "stranger", dnsNames=["stranger.stoxgw.test"]
        )
        admission, agent, event = yield self.options(certificate)
        self.assertEqual(event["status"], 401, agent.describe())
        response = parseDatagram(event["message"].encode("utf-8"))
        self.assertTrue(response.headers.getAll("WWW-Authenticate"))
        [(_, decision)] = admission.decisions
        self.assertFalse(decision.admitted)
        self.assertIsNone(decision.peerName)

    @inlineCallbacks
    def test_noCertificate(self) -> None:
        """
        RFC 5922 7.4: the client certificate is optional; a client
        without one connects and, not authenticated, is challenged (401).
        """
        admission, agent, event = yield self.options(None)
        self.assertEqual(event["status"], 401, agent.describe())
        [(_, decision)] = admission.decisions
        self.assertFalse(decision.admitted)
        self.assertEqual(self.handshakeFailures(), [])

    @inlineCallbacks
    def test_unknownCA(self) -> None:
        """
        RFC 5922 7.1 (RFC 5280 validation): a client certificate from a CA
        the gateway does not trust, even for the trusted name, fails the
        handshake: no request reaches the gateway, pjsua2's OPTIONS gets
        no response, and the gateway logs the refusal.
        """
        stranger = Authority.make("unknown CA")
        certificate, _ = stranger.issue(
            self.directory, "impostor", dnsNames=[TRUSTED_NAME]
        )
        admission, agent, event = yield self.options(certificate)
        self.assertEqual(event["status"], 0, agent.describe())
        self.assertEqual(admission.decisions, [])
        [failure] = self.handshakeFailures()
        self.assertIn("certificate verify failed", failure["error"])

    @inlineCallbacks
    def test_gatewayVerifiesAgentAgainstCAFile(self) -> None:
        """
        RFC 5922 7.3: with CA certificates configured the gateway's own
        TLS connection verifies pjsua2's server certificate (issued by the
        CA, C{IP:127.0.0.1}) against them; its OPTIONS gets pjsua2's 200.
        """
        ua, _ = self.gateway()
        certificate, _ = self.authority.issue(
            self.directory, "agent", dnsNames=[TRUSTED_NAME]
        )
        agent, port = yield self.agent(certificate)
        response = yield within(
            ua.request(
                "OPTIONS",
                SIPURI.fromString(f"sips:127.0.0.1:{port};transport=tls"),
                parseNameAddr("<sip:gw@127.0.0.1>"),
            ),
            agent,
        )
        self.assertEqual(response.status, 200, agent.describe())
