# -*- test-case-name: tests.sip.test_auth -*-
"""
Digest authentication for requests the gateway sends (RFC 3261 section
22, RFC 2617/7616 computation, RFC 8760 SHA-256 in SIP).

A L{DigestClient} holds the configured credentials.  Given a request and
the 401 (WWW-Authenticate) or 407 (Proxy-Authenticate) response that
challenged it, L{DigestClient.authorize} returns the header fields to add
to the retried request, or L{None} when the challenge cannot be answered
(no supported algorithm or qop, no credentials, or the same challenge
already failed: a second challenge with the same nonce and no
C{stale=true} means the credentials are wrong, section 22.3).

Algorithms: MD5, MD5-sess, SHA-256, SHA-256-sess (SHA-512-256 is not in
L{hashlib} everywhere and is left out).  When a response carries several
challenges, SHA-256 is preferred over MD5 (RFC 8760 section 2.4).  qop
C{auth} is preferred; C{auth-int} is used when it is the only one offered.

Authentication of requests the gateway I{receives} is not done here: see
L{stoxgw.sip.admission.DigestAdmission} (same formula).

Sans-IO; the digest formula itself is L{stoxgw.formats.digest}, shared with
the MSRP relay client.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from stoxgw.formats.digest import digestResponse
from stoxgw.sip.headers import AuthHeader, HeaderError
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.uri import quoteString

__all__ = [
    "DigestCredentials",
    "DigestClient",
    "digestResponse",
    "SUPPORTED_ALGORITHMS",
]

#: Supported algorithms, most preferred first.
SUPPORTED_ALGORITHMS = ("SHA-256", "SHA-256-SESS", "MD5", "MD5-SESS")


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """
    A user name and password, optionally limited to one realm.

    @ivar username: The user name.
    @ivar password: The password (never logged).
    @ivar realm: Only answer challenges of this realm, or any if L{None}.
    """

    username: str
    password: str
    realm: str | None = None

    def __repr__(self) -> str:
        return f"DigestCredentials({self.username!r}, <password>, {self.realm!r})"


class DigestClient:
    """
    Answers digest challenges with the configured credentials, keeping a
    nonce count per nonce.
    """

    def __init__(self, credentials: DigestCredentials | None) -> None:
        self.credentials = credentials
        self._counts: dict[str, int] = {}

    def authorize(
        self,
        request: SIPRequest,
        response: SIPResponse,
        *,
        cnonce: str | None = None,
    ) -> list[tuple[str, str]] | None:
        """
        The Authorization / Proxy-Authorization fields for retrying
        C{request} after C{response} (401 or 407).

        @param request: The challenged request (its previous credentials,
            if any, tell a failed attempt from a stale nonce).
        @param cnonce: The client nonce (random by default).
        @return: Header fields to replace the old credentials with, or
            L{None} if the challenge cannot be answered.
        """
        if self.credentials is None or response.status not in (401, 407):
            return None
        if response.status == 401:
            challengeName, answerName = "WWW-Authenticate", "Authorization"
        else:
            challengeName, answerName = "Proxy-Authenticate", "Proxy-Authorization"
        previous = set()
        for value in request.headers.getLines(answerName):
            try:
                old = AuthHeader.parse(value)
            except HeaderError:
                continue
            previous.add((old.parameter("realm"), old.parameter("nonce")))
        challenges = []
        for value in response.headers.getLines(challengeName):
            try:
                challenge = AuthHeader.parse(value)
            except HeaderError:
                continue
            if not challenge.isDigest:
                continue
            algorithm = (challenge.parameter("algorithm") or "MD5").upper()
            if algorithm not in SUPPORTED_ALGORITHMS:
                continue
            realm = challenge.parameter("realm")
            nonce = challenge.parameter("nonce")
            if realm is None or nonce is None:
                continue
            if self.credentials.realm is not None and realm != self.credentials.realm:
                continue
            stale = (challenge.parameter("stale") or "").lower() == "true"
            if (realm, nonce) in previous and not stale:
                continue
            challenges.append((SUPPORTED_ALGORITHMS.index(algorithm), challenge))
        if not challenges:
            return None
        # One answer per realm, the best algorithm for each.
        best: dict[str, AuthHeader] = {}
        for _, challenge in sorted(challenges, key=lambda item: item[0]):
            realm = challenge.parameter("realm") or ""
            best.setdefault(realm, challenge)
        fields = []
        for challenge in best.values():
            answer = self._answer(challenge, request, cnonce)
            if answer is None:
                return None
            fields.append((answerName, answer.serialize()))
        return fields

    def _answer(
        self, challenge: AuthHeader, request: SIPRequest, cnonce: str | None
    ) -> AuthHeader | None:
        assert self.credentials is not None
        algorithm = challenge.parameter("algorithm")
        realm = challenge.parameter("realm") or ""
        nonce = challenge.parameter("nonce") or ""
        offered = [
            q.strip().lower()
            for q in (challenge.parameter("qop") or "").split(",")
            if q.strip()
        ]
        qop: str | None
        if not offered:
            qop = None
        elif "auth" in offered:
            qop = "auth"
        elif "auth-int" in offered:
            qop = "auth-int"
        else:
            return None
        count = self._counts.get(nonce, 0) + 1
        self._counts[nonce] = count
        nc = f"{count:08x}"
        cnonce = cnonce or secrets.token_hex(16)
        uri = request.uri.serialize()
        response = digestResponse(
            algorithm=algorithm or "MD5",
            username=self.credentials.username,
            realm=realm,
            password=self.credentials.password,
            method=request.method,
            uri=uri,
            nonce=nonce,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            body=request.body,
        )
        params: list[tuple[str, str]] = [
            ("username", quoteString(self.credentials.username)),
            ("realm", quoteString(realm)),
            ("nonce", quoteString(nonce)),
            ("uri", quoteString(uri)),
            ("response", quoteString(response)),
        ]
        if algorithm is not None:
            params.append(("algorithm", algorithm))
        opaque = challenge.parameter("opaque")
        if opaque is not None:
            params.append(("opaque", quoteString(opaque)))
        if qop is not None:
            params.extend([("qop", qop), ("nc", nc), ("cnonce", quoteString(cnonce))])
        return AuthHeader("Digest", tuple(params))
