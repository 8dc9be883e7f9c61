# -*- test-case-name: tests.sip.test_admission,tests.sip.test_useragent -*-
"""
Who may send the UA core what (docs/design.md "Trust"): the admission of
received SIP requests, before anything else looks at them (step 1 of
the RFC 3261 section 8.2 checks in L{stoxgw.sip.incoming}).

An L{IRequestAdmission} decides per request and flow: admit (with the
authenticated user, if any), reject (C{403}) or challenge (C{401}), as an
L{AdmissionDecision}.  L{SIPTrust} admits peers from trusted networks
(CIDR list) or with a trusted TLS identity (L{tlsPeerNames}: the names
of a verified peer certificate, RFC 5922 section 7.1) and refuses the
others.

Digest authentication of received SIP requests (RFC 3261 section 22.2
and 22.4, RFC 8760 for SHA-256, RFC 7616 for the C{qop=auth} computation):
L{DigestAdmission} is an L{IRequestAdmission} for the UA core
(docs/design.md "Trust"):

 - trusted peers (L{SIPTrust}: source address in a trusted network, or a
   trusted TLS identity) are admitted without authentication;
 - ACK and CANCEL are never challenged (RFC 3261 section 22.1): they are
   admitted and matched by the UA core to their dialog or INVITE;
 - any other request needs an C{Authorization} for our realm with a
   valid response for a configured user; without one it gets C{401} with
   a C{WWW-Authenticate} per algorithm, SHA-256 first (RFC 8760 section
   2.3), C{qop="auth"}.

Nonces are stateless: the issue time, 8 random octets and an HMAC-SHA256
of both (and the realm) under a secret, in hex.  A nonce whose HMAC does
not verify (say, from before a restart) gets a fresh challenge.  A nonce
older than C{nonceLifetime} with an otherwise correct response gets a new
challenge with C{stale=true} (RFC 7616 section 3.3), so that the client
retries without asking its user.  Replays: the highest nonce count
(C{nc}) seen per nonce is kept in a bounded table, and a count not above
it is refused; a nonce forgotten to keep the table bounded is treated as
stale, so a replay never slips through an eviction.

A wrong password, an unknown user, a refused replay and a response that
ignores C{qop=auth} get C{403}.  A second 401 would be the other choice
(HTTP's); but a SIP UAC does not resubmit the same credentials after a
second challenge without C{stale=true} (RFC 3261 section 22.2, see
L{stoxgw.sip.auth}), so 403 ends the attempt at once and says why, with
the same reason phrase for unknown users and wrong passwords.

The user name that authenticated is put on the L{AdmissionDecision}
(C{user}); the UA core records it on the server transaction
(C{authenticatedUser}) for the layers above.  Passwords are never logged
and never in an L{AdmissionDecision}'s C{detail}.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from hashlib import sha256
from typing import Callable, Iterable, Mapping, Sequence

from twisted.logger import Logger
from zope.interface import Interface, implementer

from stoxgw.formats.digest import digestResponse
from stoxgw.sip.headers import AuthHeader, HeaderError
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.transport import Flow, TransportKind
from stoxgw.sip.uri import SIPURI, quoteString

__all__ = [
    "AdmissionVerdict",
    "AdmissionDecision",
    "IRequestAdmission",
    "tlsPeerNames",
    "SIPTrust",
    "DigestAdmission",
    "CHALLENGE_ALGORITHMS",
]

#: The algorithms challenged with, most preferred first (RFC 8760).
CHALLENGE_ALGORITHMS = ("SHA-256", "MD5")

_NC = re.compile(r"[0-9a-fA-F]{8}\Z")
_NONCE = re.compile(r"[0-9a-f]{64}\Z")

#: Reason phrase for every credential failure (no user enumeration).
_BAD_CREDENTIALS = "Forbidden (bad credentials)"


class AdmissionVerdict(Enum):
    """
    What to do with a received request.
    """

    #: Process it.
    ADMIT = "admit"
    #: Answer 401 with challenges (RFC 3261 section 22.2).
    CHALLENGE = "challenge"
    #: Answer with a failure (403) and drop it.
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class AdmissionDecision:
    """
    An L{IRequestAdmission}'s answer for one request.

    @ivar verdict: Admit, challenge or reject.
    @ivar status: The response status for a challenge (401) or a
        rejection (403, 400...); 0 when admitted.
    @ivar reason: The reason phrase, or L{None} for the default.
    @ivar headers: Header fields for the response (one C{WWW-Authenticate}
        per challenge, most preferred first, RFC 8760 section 2.3).
    @ivar user: The digest-authenticated user name, if any: the identity
        of the request for the layers above (never the From header).
    @ivar peerName: The trusted TLS identity of the peer, if that is what
        admitted it.
    @ivar detail: Why, for the log (never a secret).
    """

    verdict: AdmissionVerdict
    status: int = 0
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    peerName: str | None = None
    detail: str = ""

    @classmethod
    def admit(
        cls, user: str | None = None, peerName: str | None = None, detail: str = ""
    ) -> AdmissionDecision:
        """
        Process the request.
        """
        return cls(AdmissionVerdict.ADMIT, user=user, peerName=peerName, detail=detail)

    @classmethod
    def reject(
        cls, status: int = 403, reason: str | None = None, detail: str = ""
    ) -> AdmissionDecision:
        """
        Answer C{status} (403 by default).
        """
        return cls(AdmissionVerdict.REJECT, status, reason, detail=detail)

    @classmethod
    def challenge(
        cls, challenges: Sequence[str], detail: str = ""
    ) -> AdmissionDecision:
        """
        Answer 401 with a C{WWW-Authenticate} field per challenge.
        """
        return cls(
            AdmissionVerdict.CHALLENGE,
            401,
            headers=tuple(("WWW-Authenticate", c) for c in challenges),
            detail=detail,
        )

    @property
    def admitted(self) -> bool:
        """
        Whether the request is to be processed.
        """
        return self.verdict is AdmissionVerdict.ADMIT


class IRequestAdmission(Interface):
    """
    Decides whether a received request is processed, rejected (403) or
    challenged (401, digest authentication of received requests:
    L{stoxgw.sip.admission.DigestAdmission}).  ACK and CANCEL can never be
    challenged (RFC 3261 section 22.1): an implementation admits or
    rejects them.
    """

    def decide(request: SIPRequest, flow: Flow) -> AdmissionDecision:
        """
        @return: The decision; the UA core sends its response if it is not
            an admission.
        """


def tlsPeerNames(flow: Flow) -> tuple[str, ...]:
    """
    The identities in the TLS certificate of a flow's peer, lower case
    (RFC 5922 section 7.1: the host of C{sip}/C{sips} subjectAltName
    URIs and the subjectAltName DNS names; the subject CN only when there
    is no subjectAltName).

    Names are read only from a certificate the TLS layer verified
    (L{stoxgw.sip.transport.SIPStreamConnection.peerVerified}): on
    connections the gateway opened, the server's, checked against the
    trust roots and the host connected to; on incoming connections, the
    client's, when the listener has CA certificates (C{[sip] tls_ca_file})
    to check it against (a client certificate that fails that check fails
    the handshake).  Any other flow gives no name, whatever certificate
    its transport holds.

    @return: The names, or C{()} for a flow without TLS, without a
        certificate, or whose certificate was not verified.
    """
    if not getattr(flow.connection, "peerVerified", False):
        return ()
    transport = getattr(flow.connection, "transport", None)
    getPeerCertificate = getattr(transport, "getPeerCertificate", None)
    if getPeerCertificate is None:
        return ()
    try:
        certificate = getPeerCertificate()
    except Exception:
        return ()
    if certificate is None:
        return ()
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    if not isinstance(certificate, x509.Certificate):
        certificate = certificate.to_cryptography()
    names: list[str] = []
    try:
        san = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        for value in san.get_values_for_type(x509.UniformResourceIdentifier):
            scheme, _, rest = value.partition(":")
            if scheme.lower() in ("sip", "sips") and rest:
                try:
                    names.append(SIPURI.fromString(value).host)
                except ValueError:
                    continue
        names.extend(san.get_values_for_type(x509.DNSName))
    else:
        for attribute in certificate.subject.get_attributes_for_oid(
            NameOID.COMMON_NAME
        ):
            if isinstance(attribute.value, str):
                names.append(attribute.value)
    return tuple(name.lower().rstrip(".") for name in names)


@implementer(IRequestAdmission)
@dataclass(frozen=True, slots=True)
class SIPTrust:
    """
    Admits requests from trusted peers only, by source address or by TLS
    identity (docs/design.md "Trust": an identity is never taken from a From
    header); others get 403.

    @ivar networks: The trusted networks (the SIP proxies).
    @ivar trustAll: Admit everyone (tests, closed lab networks).
    @ivar tlsNames: Trusted TLS identities (lower case): a TLS flow whose
        verified peer certificate names one of them is admitted, on
        connections either side opened.
    @ivar peerNames: Reads a flow's certificate names (L{tlsPeerNames};
        tests replace it).
    """

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    trustAll: bool = False
    tlsNames: frozenset[str] = frozenset()
    peerNames: Callable[[Flow], Sequence[str]] = tlsPeerNames

    @classmethod
    def fromStrings(
        cls, networks: Iterable[str], tlsNames: Iterable[str] = ()
    ) -> SIPTrust:
        """
        Build from C{"10.0.0.0/8"}-style strings (a bare address is a /32
        or /128) and TLS names.

        @raise ValueError: Not a network.
        """
        return cls(
            tuple(ipaddress.ip_network(n, strict=False) for n in networks),
            tlsNames=frozenset(n.lower().rstrip(".") for n in tlsNames),
        )

    def isTrusted(self, host: str) -> bool:
        """
        Whether an IP address is in a trusted network.
        """
        if self.trustAll:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def trustedName(self, flow: Flow) -> str | None:
        """
        The trusted TLS identity of a TLS flow's peer, or L{None}.
        """
        if not self.tlsNames or flow.transport is not TransportKind.TLS:
            return None
        for name in self.peerNames(flow):
            if name.lower() in self.tlsNames:
                return name.lower()
        return None

    def trusts(self, flow: Flow) -> AdmissionDecision | None:
        """
        An admission if the flow's peer is trusted (by address, then by
        TLS identity), else L{None}.
        """
        if self.isTrusted(flow.source.host):
            return AdmissionDecision.admit(detail="trusted address")
        name = self.trustedName(flow)
        if name is not None:
            return AdmissionDecision.admit(peerName=name, detail="trusted TLS name")
        return None

    def decide(self, request: SIPRequest, flow: Flow) -> AdmissionDecision:
        """
        Admit trusted peers, reject others with 403.
        """
        return self.trusts(flow) or AdmissionDecision.reject(detail="untrusted peer")


@implementer(IRequestAdmission)
class DigestAdmission:
    """
    Admit trusted peers; authenticate everyone else with digest.  See the
    module docstring.

    @ivar realm: The realm of our challenges.
    @ivar trust: Who needs no authentication.
    @ivar algorithms: The algorithms offered, most preferred first.
    @ivar nonceLifetime: Seconds a nonce is good for.
    """

    _log = Logger()

    def __init__(
        self,
        realm: str,
        credentials: Mapping[str, str],
        *,
        trust: SIPTrust = SIPTrust(),
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
        nonceLifetime: float = 300.0,
        algorithms: Sequence[str] = CHALLENGE_ALGORITHMS,
        maxNonces: int = 4096,
    ) -> None:
        """
        @param credentials: Password by user name (never logged).
        @param secret: The key of the nonce HMAC (random by default: nonces
            do not survive a restart, which costs one more challenge).
        @param clock: The current time in seconds (C{reactor.seconds}).
        @param maxNonces: How many nonces' counts are remembered.
        """
        if not realm or '"' in realm or "\\" in realm:
            raise ValueError(
                "The realm must be non-empty without quotes or backslashes"
            )
        for algorithm in algorithms:
            if algorithm.upper() not in CHALLENGE_ALGORITHMS:
                raise ValueError(f"Unsupported digest algorithm {algorithm}")
        self.realm = realm
        self._credentials = dict(credentials)
        self.trust = trust
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.clock = clock
        self.nonceLifetime = nonceLifetime
        self.algorithms = tuple(a.upper() for a in algorithms)
        self.maxNonces = maxNonces
        #: nonce -> (issue time, highest nc seen), oldest use first.
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
        #: Nonces issued at or before this time may have been forgotten.
        self._forgottenBefore = -1

    def __repr__(self) -> str:
        return f"<DigestAdmission realm={self.realm!r} users={len(self._credentials)}>"

    # -- nonces ----------------------------------------------------------------

    def _mac(self, issued: bytes, salt: bytes) -> str:
        message = issued + salt + self.realm.encode("utf-8")
        return hmac.new(self._secret, message, sha256).hexdigest()[:32]

    def makeNonce(self) -> str:
        """
        A fresh nonce: issue time, salt, HMAC, all hex (64 characters).
        """
        issued = int(self.clock()).to_bytes(8, "big")
        salt = secrets.token_bytes(8)
        return issued.hex() + salt.hex() + self._mac(issued, salt)

    def _nonceIssued(self, nonce: str) -> int | None:
        """
        When a nonce of ours was issued, or L{None} if it is not ours.
        """
        if not _NONCE.match(nonce):
            return None
        issued, salt, mac = (
            bytes.fromhex(nonce[:16]),
            bytes.fromhex(nonce[16:32]),
            nonce[32:],
        )
        if not hmac.compare_digest(mac, self._mac(issued, salt)):
            return None
        return int.from_bytes(issued, "big")

    # -- challenges ------------------------------------------------------------

    def challenges(self, stale: bool = False) -> list[str]:
        """
        The C{WWW-Authenticate} values: one per algorithm, sharing a fresh
        nonce (RFC 8760 section 2.3: different algorithms, preferred
        first).
        """
        nonce = self.makeNonce()
        values = []
        for algorithm in self.algorithms:
            params = [
                ("realm", quoteString(self.realm)),
                ("nonce", quoteString(nonce)),
                ("algorithm", algorithm),
                ("qop", quoteString("auth")),
            ]
            if stale:
                params.append(("stale", "true"))
            values.append(AuthHeader("Digest", tuple(params)).serialize())
        return values

    def _challenge(self, detail: str, stale: bool = False) -> AdmissionDecision:
        return AdmissionDecision.challenge(self.challenges(stale), detail=detail)

    # -- IRequestAdmission -----------------------------------------------------

    def decide(self, request: SIPRequest, flow: Flow) -> AdmissionDecision:
        """
        Admit, challenge or reject (see the module docstring).
        """
        trusted = self.trust.trusts(flow)
        if trusted is not None:
            return trusted
        if request.method in ("ACK", "CANCEL"):
            return AdmissionDecision.admit(detail="ACK and CANCEL are not challenged")
        credentials = None
        for value in request.headers.getLines("Authorization"):
            try:
                header = AuthHeader.parse(value)
            except HeaderError:
                continue
            if header.isDigest and header.parameter("realm") == self.realm:
                credentials = header
                break
        if credentials is None:
            return self._challenge("no credentials for our realm")
        return self._verify(request, credentials)

    def _verify(
        self, request: SIPRequest, credentials: AuthHeader
    ) -> AdmissionDecision:
        username = credentials.parameter("username")
        nonce = credentials.parameter("nonce")
        uri = credentials.parameter("uri")
        response = credentials.parameter("response")
        if username is None or nonce is None or uri is None or response is None:
            return AdmissionDecision.reject(
                400, "Bad Request (incomplete credentials)", "incomplete credentials"
            )
        algorithm = (credentials.parameter("algorithm") or "MD5").upper()
        if algorithm not in self.algorithms:
            return self._challenge(f"algorithm {algorithm} not offered")
        issued = self._nonceIssued(nonce)
        if issued is None:
            return self._challenge("not our nonce")
        qop = credentials.parameter("qop")
        nc = credentials.parameter("nc") or ""
        cnonce = credentials.parameter("cnonce")
        if qop != "auth" or not _NC.match(nc) or not cnonce:
            return AdmissionDecision.reject(
                403, _BAD_CREDENTIALS, f"user {username} ignored qop=auth"
            )
        password = self._credentials.get(username)
        expected = digestResponse(
            algorithm=algorithm,
            username=username,
            realm=self.realm,
            # An unknown user costs the same work as a known one.
            password=password if password is not None else secrets.token_hex(16),
            method=request.method,
            uri=uri,
            nonce=nonce,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
        )
        if not hmac.compare_digest(expected, response.lower()) or password is None:
            return AdmissionDecision.reject(
                403, _BAD_CREDENTIALS, f"wrong credentials for user {username}"
            )
        now = self.clock()
        if now - issued > self.nonceLifetime:
            return self._challenge("stale nonce", stale=True)
        count = int(nc, 16)
        known = self._counts.get(nonce)
        if known is None:
            if issued <= self._forgottenBefore:
                return self._challenge("nonce count forgotten", stale=True)
        elif count <= known[1]:
            return AdmissionDecision.reject(
                403, _BAD_CREDENTIALS, f"replayed nonce count for user {username}"
            )
        self._remember(nonce, issued, count, now)
        self._log.debug(
            "Authenticated {user} ({algorithm})", user=username, algorithm=algorithm
        )
        return AdmissionDecision.admit(user=username, detail="digest")

    def _remember(self, nonce: str, issued: int, count: int, now: float) -> None:
        self._counts[nonce] = (issued, count)
        self._counts.move_to_end(nonce)
        while self._counts:
            oldest, (oldIssued, _) = next(iter(self._counts.items()))
            if now - oldIssued > self.nonceLifetime:
                del self._counts[oldest]
            elif len(self._counts) > self.maxNonces:
                del self._counts[oldest]
                self._forgottenBefore = max(self._forgottenBefore, oldIssued)
            else:
                break
