# -*- test-case-name: tests.sip.test_admission -*-
"""
Tests for L{stoxgw.sip.admission} and the admission step of the UA core:
digest authentication of received requests (RFC 3261 22.1-22.4, RFC 8760
SHA-256 and MD5, RFC 7616 qop=auth), trusted networks and TLS identities
(docs/design.md "Trust"; R-049: the gateway meets SIP's security
requirements).  Expected digests are computed here with L{hashlib},
independently of L{stoxgw.formats.digest}.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stoxgw.sip.admission import DigestAdmission
from stoxgw.sip.headers import AuthHeader
from stoxgw.sip.message import SIPRequest, SIPResponse, parseDatagram
from stoxgw.sip.transport import Address, Flow, TransportKind
from stoxgw.sip.useragent import (
    AdmissionDecision,
    AdmissionVerdict,
    IRequestAdmission,
    SIPTrust,
    tlsPeerNames,
)
from tests.sip.test_transport import InMemoryTLSMixin
from tests.sip.test_useragent import (
    PEER,
    InviteRecorder,
    RequestRecorder,
    UAMixin,
    request,
)

REALM = "gw.example.com"
URI = "sip:room@192.0.2.1"
HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def answer(
    challenge: AuthHeader,
    method: str,
    *,
    user: str = "alice",
    password: str = "wonderland",
    nc: str = "00000001",
    cnonce: str = "0a4f113b",
    uri: str = URI,
) -> str:
    """
    An Authorization value for C{challenge}, computed with L{hashlib}
    (RFC 7616 section 3.4.1: qop=auth).
    """
    algorithm = challenge.parameter("algorithm") or "MD5"
    nonce = challenge.parameter("nonce")

    def h(text: str) -> str:
        return HASHES[algorithm](text.encode()).hexdigest()

    ha1 = h(f"{user}:{REALM}:{password}")
    ha2 = h(f"{method}:{uri}")
    response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{REALM}", nonce="{nonce}", '
        f'uri="{uri}", response="{response}", algorithm={algorithm}, '
        f'qop=auth, nc={nc}, cnonce="{cnonce}"'
    )


class DigestUATests(UAMixin, SynchronousTestCase):  # type: ignore[misc]
    """
    The UA core with a L{DigestAdmission} trusting 10.0.0.0/8 only: the
    test peer (198.51.100.7) must authenticate.
    """

    def setUp(self) -> None:
        self.admission = DigestAdmission(
            REALM,
            {"alice": "wonderland"},
            trust=SIPTrust.fromStrings(["10.0.0.0/8"]),
            secret=b"k" * 32,
            # makeUA makes the clock.
            clock=lambda: self.clock.seconds(),
        )
        self.makeUA(admission=self.admission)
        self.messages = RequestRecorder()
        self.ua.addHandler("MESSAGE", self.messages)

    def challenge(
        self, method: str = "MESSAGE", branch: str = "z9hG4bKc1"
    ) -> SIPResponse:
        """
        Send a request without credentials; return the 401.
        """
        self.receive(request(method, branch=branch))
        response = self.only()
        self.assertEqual(response.status, 401)
        return response

    def challenges(self, response: SIPResponse) -> dict[str, AuthHeader]:
        return {
            (h.parameter("algorithm") or "MD5"): h
            for h in map(
                AuthHeader.parse, response.headers.getLines("WWW-Authenticate")
            )
        }

    def test_verify(self) -> None:
        """
        L{DigestAdmission} and L{SIPTrust} provide L{IRequestAdmission}.
        """
        self.assertTrue(verifyObject(IRequestAdmission, self.admission))
        self.assertTrue(verifyObject(IRequestAdmission, SIPTrust()))

    def test_challengeBothAlgorithms(self) -> None:
        """
        RFC 3261 22.2, RFC 8760 2.3: no credentials -> 401 with one
        WWW-Authenticate per algorithm, SHA-256 on top, same realm,
        qop="auth"; no handler sees the request.
        """
        response = self.challenge()
        values = response.headers.getLines("WWW-Authenticate")
        headers = [AuthHeader.parse(v) for v in values]
        self.assertEqual(
            [h.parameter("algorithm") for h in headers], ["SHA-256", "MD5"]
        )
        for header in headers:
            self.assertTrue(header.isDigest)
            self.assertEqual(header.parameter("realm"), REALM)
            self.assertEqual(header.parameter("qop"), "auth")
            self.assertIsNone(header.parameter("stale"))
            self.assertEqual(len(header.parameter("nonce") or ""), 64)
        self.assertEqual(self.messages.requests, [])

    def _authenticated(self, algorithm: str) -> None:
        challenge = self.challenges(self.challenge())[algorithm]
        self.receive(
            request(
                "MESSAGE",
                branch="z9hG4bKc2",
                cseq=2,
                extra=f"Authorization: {answer(challenge, 'MESSAGE')}\r\n",
            )
        )
        self.assertEqual(self.only().status, 202)
        [incoming] = self.messages.requests
        self.assertEqual(incoming.transaction.authenticatedUser, "alice")

    def test_md5Admitted(self) -> None:
        """
        RFC 3261 22.4: a correct MD5 answer is admitted and its user name
        recorded on the transaction (not the From header's user).
        """
        self._authenticated("MD5")

    def test_sha256Admitted(self) -> None:
        """
        RFC 8760 2.1: a correct SHA-256 answer is admitted.
        """
        self._authenticated("SHA-256")

    def test_inviteChallengeAndAck(self) -> None:
        """
        RFC 3261 22.2, 17.2.1: an INVITE gets 401; the ACK for that 401 is
        absorbed by the transaction layer (not challenged, not passed on);
        the INVITE with credentials reaches the handler.
        """
        invites = InviteRecorder()
        self.ua.addHandler("INVITE", invites)
        response = self.challenge("INVITE", branch="z9hG4bKi1")
        ack = request("ACK", branch="z9hG4bKi1").replace(
            b"To: <sip:room@192.0.2.1>",
            f"To: <sip:room@192.0.2.1>;tag={response.toAddress.tag}".encode(),
        )
        self.receive(ack)
        self.assertEqual(self.responses(), [])
        challenge = self.challenges(response)["SHA-256"]
        self.receive(
            request(
                "INVITE",
                branch="z9hG4bKi2",
                cseq=2,
                extra=f"Authorization: {answer(challenge, 'INVITE')}\r\n",
            )
        )
        [invite] = invites.invites
        self.assertEqual(invite.transaction.authenticatedUser, "alice")

    def test_wrongPassword403(self) -> None:
        """
        A wrong password gets 403 (not a second 401: RFC 3261 22.2 UACs do
        not resubmit after a re-challenge without stale=true); an unknown
        user gets the same answer.  The password is never logged.
        """
        challenge = self.challenges(self.challenge())["MD5"]
        with capturedLogs() as logs:
            self.receive(
                request(
                    "MESSAGE",
                    branch="z9hG4bKc2",
                    extra=f"Authorization: {answer(challenge, 'MESSAGE', password='guess')}\r\n",
                )
            )
        wrong = self.only()
        self.assertEqual(
            (wrong.status, wrong.reason), (403, "Forbidden (bad credentials)")
        )
        self.receive(
            request(
                "MESSAGE",
                branch="z9hG4bKc3",
                extra=f"Authorization: {answer(challenge, 'MESSAGE', user='mallory')}\r\n",
            )
        )
        unknown = self.only()
        self.assertEqual((unknown.status, unknown.reason), (wrong.status, wrong.reason))
        self.assertEqual(self.messages.requests, [])
        text = " ".join(formatEvent(e) + repr(e) for e in logs)
        self.assertIn("wrong credentials for user alice", text)
        self.assertNotIn("wonderland", text)
        self.assertNotIn("guess", text)
        self.assertNotIn("wonderland", repr(self.admission))

    def test_staleNonce(self) -> None:
        """
        RFC 7616 3.3: a correct answer with an expired nonce gets a new 401
        with stale=true (and a new nonce).
        """
        challenge = self.challenges(self.challenge())["SHA-256"]
        self.clock.advance(301)
        self.receive(
            request(
                "MESSAGE",
                branch="z9hG4bKc2",
                extra=f"Authorization: {answer(challenge, 'MESSAGE')}\r\n",
            )
        )
        response = self.only()
        self.assertEqual(response.status, 401)
        fresh = self.challenges(response)
        self.assertEqual(set(fresh), {"SHA-256", "MD5"})
        for header in fresh.values():
            self.assertEqual(header.parameter("stale"), "true")
            self.assertNotEqual(header.parameter("nonce"), challenge.parameter("nonce"))

    def test_expiredWrongPassword403(self) -> None:
        """
        stale=true only when the answer is otherwise correct.
        """
        challenge = self.challenges(self.challenge())["MD5"]
        self.clock.advance(301)
        self.receive(
            request(
                "MESSAGE",
                branch="z9hG4bKc2",
                extra=f"Authorization: {answer(challenge, 'MESSAGE', password='x')}\r\n",
            )
        )
        self.assertEqual(self.only().status, 403)

    def test_replayedNonceCount(self) -> None:
        """
        RFC 7616 3.4: a nonce count not above the last one seen for the
        nonce is a replay and gets 403; a higher count is admitted.
        """
        challenge = self.challenges(self.challenge())["MD5"]
        credentials = answer(challenge, "MESSAGE")
        self.receive(
            request(
                "MESSAGE", branch="z9hG4bKc2", extra=f"Authorization: {credentials}\r\n"
            )
        )
        self.assertEqual(self.only().status, 202)
        self.receive(
            request(
                "MESSAGE", branch="z9hG4bKc3", extra=f"Authorization: {credentials}\r\n"
            )
        )
        self.assertEqual(self.only().status, 403)
        again = answer(challenge, "MESSAGE", nc="00000002", cnonce="other")
        self.receive(
            request("MESSAGE", branch="z9hG4bKc4", extra=f"Authorization: {again}\r\n")
        )
        self.assertEqual(self.only().status, 202)
        self.assertEqual(len(self.messages.requests), 2)

    def test_forgedNonce(self) -> None:
        """
        A nonce we did not issue (bad HMAC, or from before a restart) gets
        a fresh challenge, not stale=true.
        """
        forged = AuthHeader.parse(
            f'Digest realm="{REALM}", nonce="{"0" * 64}", algorithm=MD5'
        )
        self.receive(
            request(
                "MESSAGE",
                branch="z9hG4bKc2",
                extra=f"Authorization: {answer(forged, 'MESSAGE')}\r\n",
            )
        )
        response = self.only()
        self.assertEqual(response.status, 401)
        self.assertIsNone(self.challenges(response)["MD5"].parameter("stale"))

    def test_otherRealmChallenged(self) -> None:
        """
        Credentials for another realm (a proxy's) are not ours: 401.
        """
        self.receive(
            request(
                "MESSAGE",
                extra='Authorization: Digest username="alice", realm="proxy.example", '
                'nonce="abc", uri="sip:room@192.0.2.1", response="00"\r\n',
            )
        )
        self.assertEqual(self.only().status, 401)

    def test_incompleteCredentials400(self) -> None:
        """
        Credentials without a response are malformed: 400.
        """
        self.receive(
            request(
                "MESSAGE",
                extra=f'Authorization: Digest username="alice", realm="{REALM}", '
                'nonce="abc", uri="sip:room@192.0.2.1"\r\n',
            )
        )
        self.assertEqual(self.only().status, 400)

    def test_noQop403(self) -> None:
        """
        An RFC 2069 answer (no qop, so no nonce count to check for
        replays) is refused: we asked for qop=auth.
        """
        challenge = self.challenges(self.challenge())["MD5"]
        nonce = challenge.parameter("nonce")
        ha1 = hashlib.md5(f"alice:{REALM}:wonderland".encode()).hexdigest()
        ha2 = hashlib.md5(f"MESSAGE:{URI}".encode()).hexdigest()
        response = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
        self.receive(
            request(
                "MESSAGE",
                branch="z9hG4bKc2",
                extra=f'Authorization: Digest username="alice", realm="{REALM}", '
                f'nonce="{nonce}", uri="{URI}", response="{response}"\r\n',
            )
        )
        self.assertEqual(self.only().status, 403)

    def test_trustedNetworkWithoutAuth(self) -> None:
        """
        docs/design.md "Trust": a peer in a trusted network is admitted without
        credentials, with no authenticated user.
        """
        self.receive(request("MESSAGE"), source=("10.1.2.3", 5060))
        self.assertEqual(self.only().status, 202)
        [incoming] = self.messages.requests
        self.assertIsNone(incoming.transaction.authenticatedUser)

    def test_cancelNotChallenged(self) -> None:
        """
        RFC 3261 22.1: CANCEL is never challenged: after an authenticated
        INVITE, a CANCEL without credentials gets 200 and the INVITE 487.
        """
        invites = InviteRecorder()
        self.ua.addHandler("INVITE", invites)
        challenge = self.challenges(self.challenge("INVITE", branch="z9hG4bKi1"))["MD5"]
        self.receive(
            request(
                "INVITE",
                branch="z9hG4bKi2",
                cseq=2,
                extra=f"Authorization: {answer(challenge, 'INVITE')}\r\n",
            )
        )
        self.assertEqual(len(invites.invites), 1)
        self.responses()
        self.receive(request("CANCEL", branch="z9hG4bKi2", cseq=2))
        self.assertEqual(
            sorted((r.status, r.cseq.method) for r in self.responses()),
            [(200, "CANCEL"), (487, "INVITE")],
        )

    def test_ackNotChallenged(self) -> None:
        """
        RFC 3261 22.1: ACK is admitted without credentials.
        """
        flow = Flow(Address(TransportKind.UDP, *PEER))
        ack = parseDatagram(request("ACK", toTag="x"))
        assert isinstance(ack, SIPRequest)
        decision = self.admission.decide(ack, flow)
        self.assertTrue(decision.admitted)
        self.assertIsNone(decision.user)
        options = parseDatagram(request("OPTIONS"))
        assert isinstance(options, SIPRequest)
        self.assertIs(
            self.admission.decide(options, flow).verdict, AdmissionVerdict.CHALLENGE
        )

    def test_boundedNonceTable(self) -> None:
        """
        The nonce-count table is bounded; a nonce forgotten to bound it is
        answered stale=true, so a replay cannot slip through the eviction.
        """
        self.admission.maxNonces = 2
        nonces = []
        for i in range(3):
            nonces.append(self.challenges(self.challenge(branch=f"z9hG4bKn{i}"))["MD5"])
            self.clock.advance(1)
        for i, challenge in enumerate(nonces):
            self.receive(
                request(
                    "MESSAGE",
                    branch=f"z9hG4bKm{i}",
                    extra=f"Authorization: {answer(challenge, 'MESSAGE')}\r\n",
                )
            )
            self.assertEqual(self.only().status, 202)
        self.assertEqual(len(self.admission._counts), 2)
        replay = answer(nonces[0], "MESSAGE", nc="00000002")
        self.receive(
            request("MESSAGE", branch="z9hG4bKr", extra=f"Authorization: {replay}\r\n")
        )
        response = self.only()
        self.assertEqual(response.status, 401)
        self.assertEqual(self.challenges(response)["MD5"].parameter("stale"), "true")
        newer = answer(nonces[2], "MESSAGE", nc="00000002")
        self.receive(
            request("MESSAGE", branch="z9hG4bKs", extra=f"Authorization: {newer}\r\n")
        )
        self.assertEqual(self.only().status, 202)


class SIPTrustTests(SynchronousTestCase):
    """
    L{SIPTrust} decisions, including TLS identities.
    """

    def test_untrusted403(self) -> None:
        """
        Untrusted peers get a 403 decision; trusted ones are admitted.
        """
        trust = SIPTrust.fromStrings(["192.0.2.0/24"])
        flow = Flow(Address(TransportKind.UDP, "198.51.100.1", 5060))
        decision = trust.decide(None, flow)  # type: ignore[arg-type]
        self.assertEqual(
            (decision.verdict, decision.status), (AdmissionVerdict.REJECT, 403)
        )
        inside = Flow(Address(TransportKind.UDP, "192.0.2.9", 5060))
        self.assertEqual(
            trust.decide(None, inside),  # type: ignore[arg-type]
            AdmissionDecision.admit(detail="trusted address"),
        )

    def test_tlsName(self) -> None:
        """
        docs/design.md "Trust" (TLS identity): a TLS flow whose certificate
        names a trusted peer is admitted with that name; the same name
        over TCP, or another name, is not.
        """
        trust = SIPTrust(
            tlsNames=frozenset({"proxy.example.com"}),
            peerNames=lambda flow: ("other.example", "Proxy.Example.com"),
        )
        tls = Flow(Address(TransportKind.TLS, "198.51.100.1", 5061))
        decision = trust.decide(None, tls)  # type: ignore[arg-type]
        self.assertTrue(decision.admitted)
        self.assertEqual(decision.peerName, "proxy.example.com")
        tcp = Flow(Address(TransportKind.TCP, "198.51.100.1", 5060))
        self.assertFalse(trust.decide(None, tcp).admitted)  # type: ignore[arg-type]
        stranger = SIPTrust(
            tlsNames=frozenset({"proxy.example.com"}),
            peerNames=lambda flow: ("evil.example",),
        )
        self.assertFalse(stranger.decide(None, tls).admitted)  # type: ignore[arg-type]

    def test_tlsPeerNames(self) -> None:
        """
        RFC 5922 7.1: names come from subjectAltName (SIP URI hosts and DNS
        names); the CN only without subjectAltName; nothing without a
        certificate.
        """
        withSAN = _certificate(
            "ignored.example",
            [
                x509.UniformResourceIdentifier("sip:Proxy.Example.com"),
                x509.DNSName("edge.example.com"),
            ],
        )
        self.assertEqual(
            tlsPeerNames(_flowWith(withSAN)), ("proxy.example.com", "edge.example.com")
        )
        self.assertEqual(
            tlsPeerNames(_flowWith(_certificate("cn.example", None))), ("cn.example",)
        )
        self.assertEqual(tlsPeerNames(_flowWith(None)), ())
        self.assertEqual(
            tlsPeerNames(Flow(Address(TransportKind.UDP, "192.0.2.1", 5060))), ()
        )

    def test_unverifiedCertificateHasNoNames(self) -> None:
        """
        RFC 5922 7.1: identities are taken only from a certificate found
        valid (RFC 5280); a certificate on a connection whose peer was not
        verified gives no name, and its flow is not trusted by name.
        """
        certificate = _certificate(
            "proxy.example.com", [x509.DNSName("proxy.example.com")]
        )
        self.assertEqual(
            tlsPeerNames(_flowWith(certificate, verified=True)), ("proxy.example.com",)
        )
        unverified = _flowWith(certificate, verified=False)
        self.assertEqual(tlsPeerNames(unverified), ())
        trust = SIPTrust(tlsNames=frozenset({"proxy.example.com"}))
        self.assertIsNone(trust.trustedName(unverified))
        self.assertFalse(trust.decide(None, unverified).admitted)  # type: ignore[arg-type]


class TLSClientCertificateTrustTests(InMemoryTLSMixin, SynchronousTestCase):
    """
    The trust decision on requests arriving over incoming TLS connections,
    after real (in-memory) handshakes with the gateway's listener
    (L{InMemoryTLSMixin}): docs/design.md "Trust", RFC 5922 7.4.  The admission
    is a L{DigestAdmission} trusting no network and the name
    C{proxy.example.com}.
    """

    def setUp(self) -> None:
        self.makeCertificates()
        self.admission = DigestAdmission(
            REALM,
            {"alice": "wonderland"},
            trust=SIPTrust(tlsNames=frozenset({"proxy.example.com"})),
            secret=b"k" * 32,
            clock=lambda: 1000.0,
        )

    def decide(self, verify: bool = True, certificate: Any = None) -> AdmissionDecision:
        """
        Connect with C{certificate}, send an INVITE; the admission's
        decision on it.
        """
        _, _, user = self.connectAsClient(verify, certificate)
        [(received, flow)] = user.received
        assert isinstance(received, SIPRequest)
        return self.admission.decide(received, flow)

    def test_verifiedTrustedName(self) -> None:
        """
        RFC 5922 7.4: a client certificate verified against the CA file
        and naming a trusted peer admits the request without digest, with
        that name.
        """
        decision = self.decide(certificate=self.proxy)
        self.assertTrue(decision.admitted)
        self.assertEqual(decision.peerName, "proxy.example.com")

    def test_verifiedOtherName(self) -> None:
        """
        A valid certificate for a name that is not trusted: the request is
        challenged (401) like any other.
        """
        _, other = self.authority.issue(
            self.directory, "other", dnsNames=["other.example.com"]
        )
        decision = self.decide(certificate=other)
        self.assertEqual(
            (decision.verdict, decision.status), (AdmissionVerdict.CHALLENGE, 401)
        )

    def test_noCertificate(self) -> None:
        """
        RFC 5922 7.4: a client that presents no certificate MUST NOT be
        considered authenticated: challenged.
        """
        decision = self.decide(certificate=None)
        self.assertEqual(decision.status, 401)

    def test_listenerWithoutCAFile(self) -> None:
        """
        Without CA certificates no client certificate is asked for, so no
        incoming connection is trusted by name.
        """
        decision = self.decide(verify=False, certificate=self.proxy)
        self.assertEqual(decision.status, 401)


class _FakeTLSTransport:
    def __init__(self, certificate: Any) -> None:
        self.certificate = certificate

    def getPeerCertificate(self) -> Any:
        return self.certificate


class _FakeConnection:
    def __init__(self, certificate: Any, verified: bool) -> None:
        self.transport = _FakeTLSTransport(certificate)
        self.peerVerified = verified


def _flowWith(certificate: Any, verified: bool = True) -> Flow:
    return Flow(
        Address(TransportKind.TLS, "192.0.2.1", 5061),
        _FakeConnection(certificate, verified),  # type: ignore[arg-type]
    )


def _certificate(
    commonName: str, san: list[x509.GeneralName] | None
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, commonName)])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if san is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(san), critical=False
        )
    return builder.sign(key, hashes.SHA256())
