# -*- test-case-name: tests.msrp.test_tls -*-
"""
MSRP over TLS (C{msrps}, RFC 4975 sections 6, 14.2-14.4).

L{MSRPTLS} holds the endpoint's own certificate and key and the trust
roots, and makes the pyOpenSSL contexts the endpoint listens and connects
with:

  - as server, it presents its certificate and asks the client for one
    (without requiring it: the check happens when a session binds);
  - as client, without an SDP C{a=fingerprint} it validates the server's
    chain against the trust roots and checks that the SubjectAltName
    matches the URI host (DNS name or IP address), sending SNI for names
    (R-160); with a fingerprint it accepts any (self-signed) certificate in
    the handshake and the endpoint compares the certificate's fingerprint
    afterwards, tearing down on mismatch (R-161).

L{certificateFingerprint} gives the RFC 4572 / RFC 8122 value for our own
C{a=fingerprint} (C{sha-256 AB:CD:...}); L{Fingerprint} parses and checks a
peer's.  L{TLSMSRPConnection} is an L{MSRPConnection} that learns when the
handshake is over (L{IHandshakeListener}) so nothing is bound to it before
its peer is verified.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any, Callable

from OpenSSL import SSL, crypto
from service_identity import VerificationError
from service_identity.cryptography import (
    verify_certificate_hostname,
    verify_certificate_ip_address,
)
from twisted.internet import ssl
from twisted.internet.interfaces import (
    IHandshakeListener,
    IOpenSSLClientConnectionCreator,
    IOpenSSLContextFactory,
)
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from stoxgw.msrp.protocol import MSRPConnection

__all__ = [
    "FINGERPRINT_ALGORITHMS",
    "TLSVerificationError",
    "FingerprintMismatch",
    "SubjectAltNameMismatch",
    "Fingerprint",
    "certificateFingerprint",
    "peerCertificate",
    "verifySubjectAltName",
    "MSRPTLS",
    "TLSMSRPConnection",
]

FINGERPRINT_ALGORITHMS: dict[str, str] = {"sha-256": "sha256", "sha-1": "sha1"}
"""
The C{a=fingerprint} hash functions accepted (RFC 8122 section 5), by their
SDP token: SHA-256 (what we send) and SHA-1 (still seen on input).
"""

Certificate = bytes | str | crypto.X509 | ssl.Certificate


class TLSVerificationError(Exception):
    """
    The peer's certificate does not identify the peer we meant (R-160,
    R-161); the connection or session is torn down.

    @ivar reason: A human-readable explanation.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class FingerprintMismatch(TLSVerificationError):
    """
    The certificate's fingerprint differs from the SDP C{a=fingerprint}
    (RFC 4975 section 14.4, R-161), or the peer presented none.
    """


class SubjectAltNameMismatch(TLSVerificationError):
    """
    The certificate's SubjectAltName does not match the URI host (RFC 4975
    section 14.2, R-160).
    """


def _derOf(certificate: Certificate) -> bytes:
    """
    The DER encoding of a certificate given in any usual form.

    @param certificate: PEM (C{bytes} or C{str}), a pyOpenSSL C{X509}, or a
        Twisted L{ssl.Certificate} (or L{ssl.PrivateCertificate}).
    @return: The DER bytes.
    @raise ValueError: If it cannot be read.
    """
    x509: crypto.X509
    if isinstance(certificate, ssl.Certificate):
        x509 = certificate.original
    elif isinstance(certificate, crypto.X509):
        x509 = certificate
    else:
        pem = (
            certificate.encode("ascii") if isinstance(certificate, str) else certificate
        )
        try:
            x509 = crypto.load_certificate(crypto.FILETYPE_PEM, pem)
        except crypto.Error as e:
            raise ValueError(f"not a PEM certificate: {e}") from None
    return crypto.dump_certificate(crypto.FILETYPE_ASN1, x509)


def _hashName(algorithm: str) -> str:
    """
    The L{hashlib} name of an SDP hash token.

    @param algorithm: C{sha-256} or C{sha-1} (any case).
    @return: The hashlib name.
    @raise ValueError: For another hash.
    """
    name = FINGERPRINT_ALGORITHMS.get(algorithm.lower())
    if name is None:
        raise ValueError(f"unsupported fingerprint hash {algorithm!r}")
    return name


def certificateFingerprint(certificate: Certificate, algorithm: str = "sha-256") -> str:
    """
    The fingerprint of a certificate as RFC 4572 section 5 / RFC 8122
    section 5 write it: upper-case hex pairs joined by colons, over the DER
    encoding.

    @param certificate: PEM, a pyOpenSSL C{X509} or a Twisted certificate.
    @param algorithm: C{sha-256} (default) or C{sha-1}.
    @return: E.g. C{"AB:CD:..."} (32 pairs for SHA-256).
    @raise ValueError: For an unreadable certificate or unknown hash.
    """
    digest = hashlib.new(_hashName(algorithm), _derOf(certificate)).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)).upper()


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """
    An SDP C{a=fingerprint} value (RFC 8122 section 5)::

        fingerprint-attribute = "fingerprint" ":" hash-func SP fingerprint

    @ivar algorithm: The hash token, lower-case (C{sha-256}, C{sha-1}).
    @ivar value: The hex pairs, upper-case, colon-separated.
    """

    algorithm: str
    value: str

    def __post_init__(self) -> None:
        """
        Normalize and validate.

        @raise ValueError: For an unknown hash or a malformed value.
        """
        algorithm = self.algorithm.lower()
        _hashName(algorithm)
        value = self.value.upper()
        size = hashlib.new(_hashName(algorithm)).digest_size
        pairs = value.split(":")
        if len(pairs) != size or not all(
            len(p) == 2 and all(c in "0123456789ABCDEF" for c in p) for p in pairs
        ):
            raise ValueError(f"malformed {algorithm} fingerprint {self.value!r}")
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "value", value)

    @classmethod
    def fromSDP(cls, text: str) -> Fingerprint:
        """
        Parse the value of C{a=fingerprint} (after the colon).

        @param text: E.g. C{"sha-256 AB:CD:..."}.
        @return: The fingerprint.
        @raise ValueError: If malformed or of an unsupported hash.
        """
        parts = text.split()
        if len(parts) != 2:
            raise ValueError(f"malformed fingerprint attribute {text!r}")
        return cls(parts[0], parts[1])

    @classmethod
    def of(cls, certificate: Certificate, algorithm: str = "sha-256") -> Fingerprint:
        """
        The fingerprint of a certificate.

        @param certificate: See L{certificateFingerprint}.
        @param algorithm: The hash token.
        @return: The fingerprint.
        """
        return cls(algorithm, certificateFingerprint(certificate, algorithm))

    def toSDP(self) -> str:
        """
        @return: The value for C{a=fingerprint:}.
        """
        return f"{self.algorithm} {self.value}"

    def __str__(self) -> str:
        return self.toSDP()

    def matches(self, certificate: Certificate) -> bool:
        """
        Whether C{certificate} has this fingerprint.

        @param certificate: The peer's certificate.
        """
        return certificateFingerprint(certificate, self.algorithm) == self.value

    def check(self, certificate: Certificate | None, peer: str) -> None:
        """
        Compare with the certificate the peer presented (R-161).

        @param certificate: The peer's certificate, or L{None} if it sent
            none.
        @param peer: The peer, for the message.
        @raise FingerprintMismatch: If it differs or is missing.
        """
        if certificate is None:
            raise FingerprintMismatch(
                f"{peer} presented no TLS certificate; SDP fingerprint {self}"
            )
        actual = certificateFingerprint(certificate, self.algorithm)
        if actual != self.value:
            raise FingerprintMismatch(
                f"TLS certificate fingerprint mismatch for {peer}: SDP says"
                f" {self.algorithm} {self.value}, certificate has"
                f" {self.algorithm} {actual}"
            )


def peerCertificate(connection: MSRPConnection) -> crypto.X509 | None:
    """
    The certificate the peer of a TLS connection presented.

    @param connection: The connection.
    @return: The pyOpenSSL certificate, or L{None} (plain TCP, none sent).
    """
    transport: Any = connection.transport
    getPeerCertificate = getattr(transport, "getPeerCertificate", None)
    if getPeerCertificate is None:
        return None
    try:
        certificate: crypto.X509 | None = getPeerCertificate()
    except SSL.Error:
        return None
    return certificate


def verifySubjectAltName(certificate: Certificate, host: str) -> None:
    """
    Check that a certificate's SubjectAltName matches a URI host (RFC 4975
    section 14.2, R-160): a C{dNSName} (RFC 6125 wildcards) for names, an
    C{iPAddress} for numeric hosts.

    @param certificate: The certificate.
    @param host: The host of the MSRPS URI (IPv6 without brackets).
    @raise SubjectAltNameMismatch: If it does not match.
    """
    x509 = crypto.load_certificate(crypto.FILETYPE_ASN1, _derOf(certificate))
    cert = x509.to_cryptography()
    try:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            verify_certificate_hostname(cert, host)
        else:
            verify_certificate_ip_address(cert, str(address))
    except VerificationError as e:
        raise SubjectAltNameMismatch(
            f"TLS certificate does not match {host}: {e}"
        ) from None


@implementer(IOpenSSLClientConnectionCreator)
class _AnyCertificateCreator:
    """
    Client connections that accept any server certificate in the handshake
    (checked by fingerprint afterwards, R-161) and send SNI for names.
    """

    def __init__(self, options: ssl.CertificateOptions, host: str) -> None:
        self._options = options
        self._host = host

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """
        @return: A client connection.
        """
        connection = SSL.Connection(self._options.getContext(), None)
        connection.set_app_data(tlsProtocol)
        try:
            ipaddress.ip_address(self._host)
        except ValueError:
            connection.set_tlsext_host_name(self._host.encode("idna"))
        return connection


@implementer(IOpenSSLContextFactory)
class _AskClientCertificate:
    """
    A server context factory that asks for a client certificate but accepts
    whatever comes (the fingerprint check is done when a session binds).
    """

    def __init__(self, options: ssl.CertificateOptions) -> None:
        self._options = options

    def getContext(self) -> SSL.Context:
        """
        @return: The context.
        """
        context = self._options.getContext()
        context.set_verify(SSL.VERIFY_PEER, _acceptAny)
        return context


def _acceptAny(
    connection: SSL.Connection,
    certificate: crypto.X509,
    errno: int,
    depth: int,
    ok: int,
) -> bool:
    """
    A verify callback that accepts every certificate.
    """
    return True


class MSRPTLS:
    """
    The endpoint's TLS material and the contexts made from it.

    @ivar certificate: Our certificate and key, or L{None} for a client
        without one.
    @ivar trustRoot: What validates servers when no fingerprint is given
        (by default the platform's trust store).
    """

    def __init__(
        self,
        certificate: ssl.PrivateCertificate | None = None,
        trustRoot: Any = None,
    ) -> None:
        """
        @param certificate: See L{certificate}.
        @param trustRoot: An L{twisted.internet.interfaces.IOpenSSLTrustRoot}
            (e.g. an L{ssl.Certificate} of a private CA), or L{None} for
            L{ssl.platformTrust}.
        """
        self.certificate = certificate
        self.trustRoot = (
            ssl.platformTrust()  # type: ignore[no-untyped-call]
            if trustRoot is None
            else trustRoot
        )
        self._anyOptions: ssl.CertificateOptions | None = None

    @classmethod
    def fromPEM(cls, pem: bytes, trustRoot: Any = None) -> MSRPTLS:
        """
        Load our certificate and key from one PEM blob (the config's
        certificate file, key included).

        @param pem: The PEM data.
        @param trustRoot: See L{__init__}.
        @return: The TLS configuration.
        """
        certificate = ssl.PrivateCertificate.loadPEM(pem)  # type: ignore[no-untyped-call]
        return cls(certificate, trustRoot)

    @classmethod
    def fromFiles(
        cls, certificatePath: str, keyPath: str | None = None, trustRoot: Any = None
    ) -> MSRPTLS:
        """
        Load our certificate and key from PEM files.

        @param certificatePath: The certificate (with the key unless
            C{keyPath} is given).
        @param keyPath: The key, if in a file of its own.
        @param trustRoot: See L{__init__}.
        @return: The TLS configuration.
        """
        with open(certificatePath, "rb") as f:
            pem = f.read()
        if keyPath is not None:
            with open(keyPath, "rb") as f:
                pem = pem + b"\n" + f.read()
        return cls.fromPEM(pem, trustRoot)

    def fingerprint(self, algorithm: str = "sha-256") -> Fingerprint | None:
        """
        Our own fingerprint for C{a=fingerprint} (R-161).

        @param algorithm: The hash token.
        @return: The fingerprint, or L{None} without a certificate.
        """
        if self.certificate is None:
            return None
        return Fingerprint.of(self.certificate, algorithm)

    def _options(self, verify: bool) -> ssl.CertificateOptions:
        """
        Certificate options with our certificate, if any.
        """
        kwargs: dict[str, Any] = {}
        if self.certificate is not None:
            kwargs["privateKey"] = self.certificate.privateKey.original
            kwargs["certificate"] = self.certificate.original
        return ssl.CertificateOptions(
            raiseMinimumTo=ssl.TLSVersion.TLSv1_2, **kwargs  # RFC 8996
        )

    def serverContextFactory(self) -> Any:
        """
        The context factory to listen with.

        @return: An old-style context factory (C{getContext}).
        @raise ValueError: Without a certificate.
        """
        if self.certificate is None:
            raise ValueError("listening for msrps needs a certificate and key")
        return _AskClientCertificate(self._options(False))

    def clientCreator(self, host: str, fingerprint: Fingerprint | None) -> Any:
        """
        The connection creator to connect to C{host} with.

        @param host: The URI host.
        @param fingerprint: The SDP fingerprint, or L{None}: then the chain
            is validated and the SubjectAltName must match C{host} (R-160).
        @return: An L{IOpenSSLClientConnectionCreator}.
        """
        if fingerprint is not None:
            if self._anyOptions is None:
                self._anyOptions = self._options(False)
            return _AnyCertificateCreator(self._anyOptions, host)
        return ssl.optionsForClientTLS(
            host,
            trustRoot=self.trustRoot,
            clientCertificate=self.certificate,
            extraCertificateOptions={"raiseMinimumTo": ssl.TLSVersion.TLSv1_2},
        )


@implementer(IHandshakeListener)
class TLSMSRPConnection(MSRPConnection):
    """
    An L{MSRPConnection} over TLS that tells when the handshake is done.

    @ivar secured: Whether the handshake completed.
    @ivar onSecured: Called with the connection once the handshake is done.
    """

    secured = False
    onSecured: Callable[[TLSMSRPConnection], None] | None = None
    lostReason: Failure | None = None

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Remember why (sessions still waiting for the handshake are failed
        with it), then as L{MSRPConnection.connectionLost}.

        @param reason: Why the connection was lost.
        """
        if self.lostReason is None:
            self.lostReason = reason
        super().connectionLost(reason)

    def disconnect(self) -> None:
        """
        Close the connection: unregister as the transport's producer first,
        since a TLS transport does not send its close_notify (and so never
        closes) while a producer is registered.
        """
        transport: Any = self.transport
        if transport is not None and self.open:
            try:
                transport.unregisterProducer()
            except Exception as e:
                self._log.debug(
                    "Cannot unregister from {peer}: {error}", peer=self.peer, error=e
                )
        super().disconnect()

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake is over: the peer certificate can be checked.
        """
        self.secured = True
        if self.onSecured is not None:
            self.onSecured(self)

    @property
    def peerCertificate(self) -> crypto.X509 | None:
        """
        The peer's certificate, if any.
        """
        return peerCertificate(self)
