# -*- test-case-name: tests.sip.test_admission -*-
"""
Digest authentication of received SIP requests (RFC 3261 section 22.2
and 22.4, RFC 8760 for SHA-256, RFC 7616 for the C{qop=auth} computation).

L{DigestAdmission} is an L{IRequestAdmission} for the UA core
(DESIGN.md "Trust"):

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
import re
import secrets
import time
from collections import OrderedDict
from hashlib import sha256
from typing import Callable, Mapping, Sequence

from twisted.logger import Logger
from zope.interface import implementer

from stoxgw.formats.digest import digestResponse
from stoxgw.sip.headers import AuthHeader, HeaderError
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.transport import Flow
from stoxgw.sip.uri import quoteString
from stoxgw.sip.useragent import AdmissionDecision, IRequestAdmission, SIPTrust

__all__ = ["DigestAdmission", "CHALLENGE_ALGORITHMS"]

#: The algorithms challenged with, most preferred first (RFC 8760).
CHALLENGE_ALGORITHMS = ("SHA-256", "MD5")

_NC = re.compile(r"[0-9a-fA-F]{8}\Z")
_NONCE = re.compile(r"[0-9a-f]{64}\Z")

#: Reason phrase for every credential failure (no user enumeration).
_BAD_CREDENTIALS = "Forbidden (bad credentials)"


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
