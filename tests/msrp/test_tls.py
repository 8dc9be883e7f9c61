# -*- test-case-name: tests.msrp.test_tls -*-
"""
Tests for L{stoxgw.msrp.tls} and the TLS part of L{stoxgw.msrp.endpoint}
(no sockets: L{MemoryReactorClock} and string transports).

Certificates are made at run time (no private key is committed).
"""

from __future__ import annotations

import datetime
import hashlib
import os
from ipaddress import ip_address

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import crypto
from twisted.internet import ssl
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import ClientFactory
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.msrp.builders import buildRequest
from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.message import MSRPMethod, MSRPResponse
from stoxgw.msrp.session import SessionState
from stoxgw.msrp.tls import (
    MSRPTLS,
    Fingerprint,
    FingerprintMismatch,
    SubjectAltNameMismatch,
    TLSMSRPConnection,
    TLSVerificationError,
    certificateFingerprint,
    verifySubjectAltName,
)
from stoxgw.msrp.uri import MSRPURI
from tests.msrp.test_protocol import written
from tests.msrp.test_session import Handler

DNS_NAME = "msrp.stoxgw.test"


def makeCertificate(
    directory: str,
    name: str = "cert",
    dnsName: str = DNS_NAME,
    ipAddress: str = "127.0.0.1",
) -> tuple[str, ssl.PrivateCertificate]:
    """
    Make a self-signed certificate and key (P-256, one day) valid for an IP
    address SAN and a DNS name SAN, and write them as one PEM file.

    @param directory: Where to write C{<name>.pem} (created if needed).
    @param name: The file name stem.
    @param dnsName: The C{dNSName} SAN (also the CN).
    @param ipAddress: The C{iPAddress} SAN.
    @return: The PEM path and the loaded certificate with its key.
    """
    os.makedirs(directory, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dnsName)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(dnsName), x509.IPAddress(ip_address(ipAddress))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = os.path.join(directory, f"{name}.pem")
    with open(path, "wb") as f:
        f.write(pem)
    return path, ssl.PrivateCertificate.loadPEM(pem)


class TLSStringTransport(StringTransport):
    """
    A string transport that presents a peer certificate and records aborts.
    """

    def __init__(self, peerCertificate: crypto.X509 | None) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "192.0.2.7", 7777))
        self.peerCertificate = peerCertificate
        self.aborted = False

    def getPeerCertificate(self) -> crypto.X509 | None:
        return self.peerCertificate

    def abortConnection(self) -> None:
        self.aborted = True
        self.disconnecting = True


class FingerprintTests(SynchronousTestCase):
    """
    L{certificateFingerprint} and L{Fingerprint} (RFC 4572 section 5, RFC
    8122 section 5, R-161).
    """

    def setUp(self) -> None:
        self.path, self.certificate = makeCertificate(self.mktemp())

    def test_format(self) -> None:
        """
        R-161: SHA-256 over the DER encoding, 32 upper-case hex pairs
        joined by colons, from PEM text, PEM bytes, pyOpenSSL and Twisted
        certificates alike.
        """
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, self.certificate.original)
        digest = hashlib.sha256(der).hexdigest().upper()
        expected = ":".join(digest[i : i + 2] for i in range(0, 64, 2))
        pem = self.certificate.dumpPEM()
        for form in (
            pem,
            pem.decode("ascii"),
            self.certificate.original,
            self.certificate,
        ):
            self.assertEqual(certificateFingerprint(form), expected)
        self.assertEqual(len(expected.split(":")), 32)

    def test_sha1(self) -> None:
        """
        R-161: SHA-1 (still seen in offers) gives 20 pairs.
        """
        value = certificateFingerprint(self.certificate, "SHA-1")
        self.assertEqual(len(value.split(":")), 20)

    def test_unsupportedHash(self) -> None:
        """
        Hashes other than SHA-256 and SHA-1 are refused.
        """
        self.assertRaises(ValueError, certificateFingerprint, self.certificate, "md5")
        self.assertRaises(ValueError, Fingerprint.fromSDP, "md5 AB:CD")

    def test_notACertificate(self) -> None:
        """
        Garbage is a L{ValueError}.
        """
        self.assertRaises(ValueError, certificateFingerprint, b"not a certificate")

    def test_sdpRoundTrip(self) -> None:
        """
        R-161: the C{a=fingerprint} value parses case-insensitively and
        serializes as C{sha-256 AB:...}.
        """
        ours = MSRPTLS(self.certificate).fingerprint()
        assert ours is not None
        text = ours.toSDP()
        self.assertTrue(text.startswith("sha-256 "))
        parsed = Fingerprint.fromSDP("SHA-256 " + text.split()[1].lower())
        self.assertEqual(parsed, ours)
        self.assertTrue(parsed.matches(self.certificate))

    def test_malformed(self) -> None:
        """
        Wrong lengths and non-hex values are refused.
        """
        for text in ("sha-256", "sha-256 AB:CD", "sha-1 " + ":".join(["ZZ"] * 20)):
            self.assertRaises(ValueError, Fingerprint.fromSDP, text)

    def test_checkPasses(self) -> None:
        """
        R-161: the certificate with the SDP fingerprint passes.
        """
        Fingerprint.of(self.certificate).check(self.certificate.original, "peer")
        Fingerprint.of(self.certificate, "sha-1").check(self.certificate, "peer")

    def test_checkFails(self) -> None:
        """
        R-161: another certificate, or none, is a L{FingerprintMismatch}
        naming the peer and both values.
        """
        _, other = makeCertificate(self.mktemp())
        expected = Fingerprint.of(self.certificate)
        error = self.assertRaises(
            FingerprintMismatch, expected.check, other.original, "127.0.0.1:9"
        )
        self.assertIn("127.0.0.1:9", str(error))
        self.assertIn(expected.value, str(error))
        self.assertIn(certificateFingerprint(other), str(error))
        self.assertRaises(FingerprintMismatch, expected.check, None, "peer")


class SubjectAltNameTests(SynchronousTestCase):
    """
    L{verifySubjectAltName} (RFC 4975 section 14.2, R-160).
    """

    def setUp(self) -> None:
        _, self.certificate = makeCertificate(self.mktemp())

    def test_matches(self) -> None:
        """
        R-160: the IP address SAN and the DNS name SAN match.
        """
        verifySubjectAltName(self.certificate, "127.0.0.1")
        verifySubjectAltName(self.certificate, DNS_NAME)
        verifySubjectAltName(self.certificate, DNS_NAME.upper())

    def test_mismatch(self) -> None:
        """
        R-160: another name or address is a L{SubjectAltNameMismatch}.
        """
        for host in ("other.stoxgw.test", "127.0.0.2", "::1"):
            self.assertRaises(
                SubjectAltNameMismatch, verifySubjectAltName, self.certificate, host
            )


class TLSEndpointTests(SynchronousTestCase):
    """
    L{MSRPEndpoint} with L{MSRPTLS}: msrps URIs, TLS listener and
    connections, the fingerprint check on both sides (R-150, R-160,
    R-161).
    """

    def setUp(self) -> None:
        directory = self.mktemp()
        _, self.ours = makeCertificate(directory, "ours")
        _, self.theirs = makeCertificate(directory, "theirs")
        _, self.impostor = makeCertificate(directory, "impostor")
        self.reactor = MemoryReactorClock()
        self.endpoint = MSRPEndpoint(
            self.reactor,
            "127.0.0.1",
            2856,
            tls=MSRPTLS(self.ours, trustRoot=self.theirs),
        )
        self.endpoint.startListening()
        self.peer = MSRPURI.fromString("msrps://127.0.0.1:7777/peersession;tcp")

    def complete(
        self, certificate: ssl.PrivateCertificate | None
    ) -> tuple[TLSMSRPConnection, TLSStringTransport]:
        """
        Complete the last outgoing TLS connection attempt (the handshake is
        still to come).
        """
        factory: ClientFactory = self.reactor.sslClients[-1][2]
        connection = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 7777))
        assert isinstance(connection, TLSMSRPConnection)
        transport = TLSStringTransport(
            None if certificate is None else certificate.original
        )
        connection.makeConnection(transport)
        return connection, transport

    def test_msrpsListener(self) -> None:
        """
        R-150, R-160: with a certificate the endpoint listens with TLS and
        its session URIs are C{msrps://...;tcp}.
        """
        self.assertEqual(len(self.reactor.sslServers), 1)
        port, _, contextFactory, _, interface = self.reactor.sslServers[0]
        self.assertEqual((port, interface), (2856, "127.0.0.1"))
        context = contextFactory.getContext()
        self.assertIsNotNone(context)
        uri = self.endpoint.createSession(Handler()).localURI
        self.assertEqual((uri.scheme, uri.transport), ("msrps", "tcp"))
        self.assertTrue(uri.secure)

    def test_listenNeedsCertificate(self) -> None:
        """
        msrps without a certificate cannot listen.
        """
        endpoint = MSRPEndpoint(MemoryReactorClock(), "127.0.0.1", 0, scheme="msrps")
        self.assertRaises(ValueError, endpoint.startListening)

    def test_connectsWithTLS(self) -> None:
        """
        R-160: an msrps peer is reached with TLS; without a fingerprint the
        creator verifies the host (Twisted's optionsForClientTLS), with one
        it accepts any certificate for the fingerprint check.
        """
        session = self.endpoint.createSession(Handler())
        self.endpoint.connectSession(session, (self.peer,))
        host, port, _, creator, _, _ = self.reactor.sslClients[-1]
        self.assertEqual((host, port), ("127.0.0.1", 7777))
        self.assertEqual(type(creator).__name__, "ClientTLSOptions")
        other = self.endpoint.createSession(Handler())
        fingerprint = Fingerprint.of(self.theirs)
        self.endpoint.connectSession(other, (self.peer,), fingerprint.toSDP())
        self.assertEqual(len(self.reactor.sslClients), 2)
        creator = self.reactor.sslClients[-1][3]
        self.assertEqual(type(creator).__name__, "_AnyCertificateCreator")

    def test_nothingBeforeHandshake(self) -> None:
        """
        R-161: nothing is bound or written before the handshake is over;
        then the fingerprint matches, the session binds and sends its
        bodiless SEND (R-157).
        """
        handler = Handler()
        session = self.endpoint.createSession(handler)
        d = self.endpoint.connectSession(
            session, (self.peer,), Fingerprint.of(self.theirs)
        )
        connection, transport = self.complete(self.theirs)
        self.assertNoResult(d)
        self.assertIs(session.state, SessionState.WAITING)
        self.assertEqual(transport.value(), b"")
        connection.handshakeCompleted()
        self.assertIs(self.successResultOf(d), session)
        self.assertIs(session.connection, connection)
        [send] = written(transport)
        self.assertEqual(send.method, "SEND")  # type: ignore[union-attr]
        self.assertFalse(transport.aborted)

    def test_fingerprintMismatchActive(self) -> None:
        """
        R-161: a certificate that does not match the SDP fingerprint aborts
        the connection; the session fails with L{FingerprintMismatch}.
        """
        handler = Handler()
        session = self.endpoint.createSession(handler)
        d = self.endpoint.connectSession(
            session, (self.peer,), Fingerprint.of(self.theirs)
        )
        connection, transport = self.complete(self.impostor)
        connection.handshakeCompleted()
        failure = self.failureResultOf(d, FingerprintMismatch)
        self.assertIn("fingerprint mismatch", failure.getErrorMessage())
        self.assertTrue(transport.aborted)
        self.assertEqual(transport.value(), b"")
        self.assertIs(session.state, SessionState.FAILED)
        [reason] = handler.failures
        self.assertIsInstance(reason.value, FingerprintMismatch)

    def test_sharedOnlyWithSameFingerprint(self) -> None:
        """
        Connections checked against different fingerprints are not shared;
        the same fingerprint shares the verified connection.
        """
        first = self.endpoint.createSession(Handler())
        self.endpoint.connectSession(first, (self.peer,), Fingerprint.of(self.theirs))
        connection, _ = self.complete(self.theirs)
        connection.handshakeCompleted()
        second = self.endpoint.createSession(Handler())
        self.successResultOf(
            self.endpoint.connectSession(
                second, (self.peer,), Fingerprint.of(self.theirs)
            )
        )
        self.assertIs(second.connection, connection)
        third = self.endpoint.createSession(Handler())
        self.endpoint.connectSession(third, (self.peer,), Fingerprint.of(self.impostor))
        self.assertEqual(len(self.reactor.sslClients), 2)

    def test_handshakeFailure(self) -> None:
        """
        R-160: a connection lost before the handshake ended (e.g. the
        SubjectAltName did not match) fails the waiting session with a
        clear TLS reason.
        """
        from service_identity import VerificationError

        handler = Handler()
        session = self.endpoint.createSession(handler)
        d = self.endpoint.connectSession(session, (self.peer,))
        connection, _ = self.complete(self.impostor)
        connection.connectionLost(Failure(VerificationError(errors=[])))
        failure = self.failureResultOf(d, SubjectAltNameMismatch)
        self.assertIn(str(self.peer), failure.getErrorMessage())
        self.assertIs(session.state, SessionState.FAILED)

        other = self.endpoint.createSession(Handler())
        d = self.endpoint.connectSession(other, (self.peer,))
        connection, _ = self.complete(None)
        connection.connectionLost(Failure(ConnectionError("reset")))
        failure = self.failureResultOf(d, TLSVerificationError)
        self.assertIn("TLS handshake", failure.getErrorMessage())

    def accept(
        self, certificate: ssl.PrivateCertificate | None
    ) -> tuple[TLSMSRPConnection, TLSStringTransport]:
        """
        Accept a TLS connection whose client presented C{certificate}.
        """
        factory = self.reactor.sslServers[0][1]
        connection = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert isinstance(connection, TLSMSRPConnection)
        transport = TLSStringTransport(
            None if certificate is None else certificate.original
        )
        connection.makeConnection(transport)
        connection.handshakeCompleted()
        return connection, transport

    def bodiless(self, toURI: MSRPURI) -> bytes:
        """
        The active peer's bodiless SEND to C{toURI}.
        """
        return buildRequest(
            MSRPMethod.SEND,
            (toURI,),
            (self.peer,),
            [("Message-ID", "tlsmsg0001"), ("Byte-Range", "1-0/0")],
        ).serialize()

    def test_passiveFingerprintMatches(self) -> None:
        """
        R-161: the passive side binds a session whose expected fingerprint
        the client's certificate has.
        """
        session = self.endpoint.createSession(
            Handler(), peerFingerprint=Fingerprint.of(self.theirs).toSDP()
        )
        connection, transport = self.accept(self.theirs)
        connection.dataReceived(self.bodiless(session.localURI))
        self.assertIs(session.connection, connection)
        [response] = written(transport)
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.code, 200)

    def test_passiveFingerprintMismatch(self) -> None:
        """
        R-161: a client certificate (or none) that does not match the
        expected fingerprint fails the session and aborts the connection.
        """
        for certificate in (self.impostor, None):
            handler = Handler()
            session = self.endpoint.createSession(handler)
            self.endpoint.expectFingerprint(session, Fingerprint.of(self.theirs))
            connection, transport = self.accept(certificate)
            connection.dataReceived(self.bodiless(session.localURI))
            self.assertIs(session.state, SessionState.FAILED)
            self.assertIsInstance(handler.failures[0].value, FingerprintMismatch)
            self.assertTrue(transport.aborted)
            self.assertIsNone(self.endpoint.sessionFor(session.localURI))

    def test_passiveWithoutFingerprint(self) -> None:
        """
        Without an expected fingerprint any client binds (the SDP layer
        decides whether to require one).
        """
        session = self.endpoint.createSession(Handler())
        connection, _ = self.accept(None)
        connection.dataReceived(self.bodiless(session.localURI))
        self.assertIs(session.connection, connection)

    def test_disconnectUnregistersProducer(self) -> None:
        """
        Closing a TLS connection unregisters it as the transport's producer
        first (a TLS transport sends no close_notify while one is
        registered, so the connection would never close).
        """
        connection, transport = self.accept(None)
        self.assertIs(transport.producer, connection)
        connection.disconnect()
        self.assertIsNone(transport.producer)
        self.assertTrue(transport.disconnecting)
