# -*- test-case-name: tests.interop.test_msrp_tls -*-
"""
Two L{MSRPEndpoint}s in one process talk MSRP over TLS (C{msrps}) on
127.0.0.1 with real sockets: a chunked 100 kB message each way with the
SDP fingerprint check on both sides, and the refusals: a mismatched
fingerprint (R-161) and a certificate whose SubjectAltName does not match
the URI host (R-160).

The certificates are made at run time in the test's temporary directory.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.ssl import PrivateCertificate
from twisted.trial.unittest import TestCase

from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.session import IncomingMessage, SendResult, SessionState
from stoxgw.msrp.tls import (
    MSRPTLS,
    Fingerprint,
    FingerprintMismatch,
    SubjectAltNameMismatch,
)
from tests.interop.msrpendpoints import WaitingHandler, startEndpoint
from tests.msrp.test_tls import makeCertificate


class MSRPOverTLSTests(TestCase):
    """
    Real TLS sockets, real reactor, bounded wait.
    """

    timeout = 30

    def endpoint(
        self, certificate: PrivateCertificate, trustRoot: Any = None
    ) -> MSRPEndpoint:
        """
        A TLS endpoint on 127.0.0.1 with an ephemeral port, cleaned up after
        the test.
        """
        return startEndpoint(
            self,
            tls=MSRPTLS(certificate, trustRoot=trustRoot or certificate),
            transactionTimeout=10,
            connectTimeout=5,
        )

    def certificates(
        self,
    ) -> tuple[PrivateCertificate, PrivateCertificate, PrivateCertificate]:
        """
        Alice's, Bob's and an impostor's self-signed certificates.
        """
        directory = self.mktemp()
        return (
            makeCertificate(directory, "alice")[1],
            makeCertificate(directory, "bob")[1],
            makeCertificate(directory, "impostor")[1],
        )

    @inlineCallbacks
    def test_chunkedBothWaysWithFingerprints(self) -> Any:
        """
        R-150, R-161, R-134, R-146: msrps URIs; the active side checks the
        server's certificate against Bob's SDP fingerprint, the passive
        side the client's against Alice's; 100 kB go each way in chunks
        with a success REPORT.
        """
        aliceCert, bobCert, _ = self.certificates()
        alice, bob = self.endpoint(aliceCert), self.endpoint(bobCert)
        aliceHandler, bobHandler = WaitingHandler(), WaitingHandler()
        aliceFingerprint = alice.tls.fingerprint()  # type: ignore[union-attr]
        bobFingerprint = bob.tls.fingerprint()  # type: ignore[union-attr]
        aliceSession = alice.createSession(aliceHandler)
        bobSession = bob.createSession(
            bobHandler,
            remotePath=alice.sdpPath(aliceSession),
            peerFingerprint=aliceFingerprint,
        )
        self.assertEqual(bobSession.localURI.scheme, "msrps")
        yield alice.connectSession(
            aliceSession, bob.sdpPath(bobSession), bobFingerprint
        )

        payload = bytes(range(256)) * 400
        result: SendResult = yield aliceSession.sendMessage(
            "text/plain", payload, successReport=True
        )
        self.assertTrue(result.successReported)
        received: IncomingMessage = yield bobHandler.message
        self.assertEqual(received.body, payload)
        self.assertIs(bobSession.state, SessionState.BOUND)

        back = payload[::-1]
        result = yield bobSession.sendMessage("text/plain", back, successReport=True)
        self.assertTrue(result.successReported)
        receivedBack: IncomingMessage = yield aliceHandler.message
        self.assertEqual(receivedBack.body, back)
        self.assertEqual(aliceHandler.failures + bobHandler.failures, [])

    @inlineCallbacks
    def test_fingerprintMismatchRefused(self) -> Any:
        """
        R-161: Bob presents a certificate that does not match the SDP
        fingerprint: the connection is torn down and the session fails
        with L{FingerprintMismatch}; nothing reached Bob's session.
        """
        aliceCert, bobCert, impostorCert = self.certificates()
        alice, bob = self.endpoint(aliceCert), self.endpoint(bobCert)
        aliceHandler, bobHandler = WaitingHandler(), WaitingHandler()
        aliceSession = alice.createSession(aliceHandler)
        bobSession = bob.createSession(bobHandler, remotePath=aliceSession.localPath)
        wrong = Fingerprint.of(impostorCert)
        error = yield self.assertFailure(
            alice.connectSession(aliceSession, bobSession.localPath, wrong),
            FingerprintMismatch,
        )
        self.assertIn("fingerprint mismatch", str(error))
        self.assertIn(wrong.value, str(error))
        self.assertIs(aliceSession.state, SessionState.FAILED)
        [reason] = aliceHandler.failures
        self.assertIsInstance(reason.value, FingerprintMismatch)
        self.assertIs(bobSession.state, SessionState.WAITING)

    @inlineCallbacks
    def test_passiveFingerprintMismatch(self) -> Any:
        """
        R-161 on the passive side: Bob expects another client certificate
        than Alice's; Bob's session fails, Alice's opening SEND gets no
        200 and her session fails when the connection is torn down.
        """
        aliceCert, bobCert, impostorCert = self.certificates()
        alice, bob = self.endpoint(aliceCert), self.endpoint(bobCert)
        aliceHandler = WaitingHandler()
        bobFailed: Deferred[None] = Deferred()

        class BobHandler(WaitingHandler):
            def sessionFailed(self, reason: Any) -> None:
                super().sessionFailed(reason)
                bobFailed.callback(None)

        bobHandler = BobHandler()
        aliceSession = alice.createSession(aliceHandler)
        bobSession = bob.createSession(
            bobHandler,
            remotePath=aliceSession.localPath,
            peerFingerprint=Fingerprint.of(impostorCert),
        )
        yield alice.connectSession(
            aliceSession, bobSession.localPath, bob.tls.fingerprint()  # type: ignore[union-attr]
        )
        yield bobFailed
        self.assertIs(bobSession.state, SessionState.FAILED)
        self.assertIsInstance(bobHandler.failures[0].value, FingerprintMismatch)

    @inlineCallbacks
    def test_subjectAltName(self) -> Any:
        """
        R-160: without a fingerprint the server certificate must chain to
        the trust root and its SubjectAltName match the URI host:
        127.0.0.1 passes; a certificate for 127.0.0.2 only is refused with
        L{SubjectAltNameMismatch}.
        """
        directory = self.mktemp()
        _, aliceCert = makeCertificate(directory, "alice")
        _, bobCert = makeCertificate(directory, "bob")
        _, wrongCert = makeCertificate(
            directory, "wrong", dnsName="elsewhere.stoxgw.test", ipAddress="127.0.0.2"
        )
        alice = self.endpoint(aliceCert, trustRoot=bobCert)
        bob = self.endpoint(bobCert)
        bobHandler = WaitingHandler()
        aliceSession = alice.createSession(WaitingHandler())
        bobSession = bob.createSession(bobHandler, remotePath=aliceSession.localPath)
        yield alice.connectSession(aliceSession, bobSession.localPath)
        yield aliceSession.sendMessage("text/plain", b"checked by name")
        received: IncomingMessage = yield bobHandler.message
        self.assertEqual(received.body, b"checked by name")

        wrong = self.endpoint(wrongCert)
        trusting = self.endpoint(aliceCert, trustRoot=wrongCert)
        session = trusting.createSession(WaitingHandler())
        target = wrong.createSession(WaitingHandler())
        error = yield self.assertFailure(
            trusting.connectSession(session, target.localPath), SubjectAltNameMismatch
        )
        self.assertIn("127.0.0.1", str(error))
        self.assertIs(session.state, SessionState.FAILED)
