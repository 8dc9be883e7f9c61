# -*- test-case-name: tests.msrp.test_relay,tests.msrp.test_relayendpoint -*-
"""
The AUTH exchange with an MSRP relay (RFC 4976 sections 5.1, 9.1), sans-IO:
L{RelayAuthenticator}, which a connection drives (see
L{stoxgw.msrp.relay} for the digest computation, the challenges, the
errors and the paths through relays it uses).
"""

from __future__ import annotations

import secrets
from typing import Callable, Sequence

from stoxgw.msrp.builders import buildRequest
from stoxgw.msrp.message import (
    AuthParameters,
    MSRPMethod,
    MSRPParseError,
    MSRPRequest,
    MSRPResponse,
)
from stoxgw.msrp.relay import (
    DigestAlgorithm,
    DigestChallenge,
    RelayAuthError,
    RelayAuthorized,
    RelayChallengeError,
    RelayCredentialsRejected,
    RelayCredentialsRequired,
    RelayForbidden,
    RelayIntervalOutOfBounds,
    RelayMutualAuthFailed,
    RelayProtocolError,
    RelayRejected,
    digestResponse,
    digestResponseAuth,
)
from stoxgw.msrp.uri import MSRPURI

__all__ = [
    "DEFAULT_MAX_CHALLENGES",
    "RelayAuthenticator",
]

DEFAULT_MAX_CHALLENGES = 3
"""
How many challenges one AUTH exchange answers at most (a relay that keeps
sending C{stale=true} challenges ends in L{RelayCredentialsRejected}).
"""

#: Preference among several challenges: the strongest first (RFC 7616 3.7).
_PREFERENCE = (DigestAlgorithm.SHA256, DigestAlgorithm.MD5)


def _quoted(value: str) -> str:
    """
    Make a quoted-string (RFC 2616 section 2.2).

    @param value: The text.
    @return: The text in double quotes, C{"} and C{\\} escaped.
    @raise ValueError: If it contains a control character.
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"control character in {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _optionalNumber(response: MSRPResponse, name: str) -> int | None:
    """
    Read an optional C{1*DIGIT} header (RFC 4976 section 7).

    @param response: The response.
    @param name: The header name.
    @return: The number, or L{None} if absent.
    @raise RelayProtocolError: If malformed.
    """
    value = response.header(name)
    if value is None:
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 20:
        # int() refuses more than 4300 digits; no interval needs 21.
        raise RelayProtocolError(f"malformed {name} {value!r}", response)
    return int(value)


class RelayAuthenticator:
    """
    The AUTH exchange with one relay (RFC 4976 sections 5.1, 9.1), sans-IO.

    Call L{firstRequest} and send the AUTH it returns; pass the response
    for it to L{responseReceived}, which returns the next AUTH to send
    (answering a challenge), or L{RelayAuthorized}, or raises a
    L{RelayAuthError}.  After an outcome the authenticator is idle again:
    L{firstRequest} starts the next exchange (to refresh before
    L{RelayAuthorized.expires}), answering a known C{nextnonce} directly.

    @ivar relayURI: The relay (rightmost To-Path URI, and digest URI).
    @ivar ownURI: Our URI (the From-Path).
    @ivar via: Relays before this one (their Use-Path), for an AUTH
        tunnelled to an outer relay (RFC 4976 section 5.1).
    @ivar expires: The C{Expires} to ask for, or L{None}.
    """

    def __init__(
        self,
        relayURI: MSRPURI,
        ownURI: MSRPURI,
        username: str | None = None,
        password: str | None = None,
        *,
        via: Sequence[MSRPURI] = (),
        expires: int | None = None,
        cnonceFactory: Callable[[], str] | None = None,
        maxChallenges: int = DEFAULT_MAX_CHALLENGES,
    ) -> None:
        """
        @param relayURI: See L{relayURI}.
        @param ownURI: See L{ownURI}.
        @param username: The C{relay_username}, or L{None} for none.
        @param password: The C{relay_password} (revealed), or L{None}.
        @param via: See L{via}.
        @param expires: See L{expires}.
        @param cnonceFactory: Makes client nonces; by default 64 random
            bits as hex from L{secrets}.
        @param maxChallenges: How many challenges one exchange answers.
        @raise ValueError: If only one of C{username} and C{password} is
            given, or C{expires} is negative.
        """
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        if expires is not None and expires < 0:
            raise ValueError("expires must not be negative")
        self.relayURI = relayURI
        self.ownURI = ownURI
        self.via = tuple(via)
        self.expires = expires
        self._username = username
        self._password = password
        self._cnonceFactory = cnonceFactory or (lambda: secrets.token_hex(8))
        self._maxChallenges = maxChallenges
        self._pending: MSRPRequest | None = None
        self._preemptive = False
        self._challenges = 0
        self._answered: DigestChallenge | None = None
        self._cnonce: str | None = None
        self._nc: str | None = None
        self._nonceCounts: dict[str, int] = {}
        self._nextChallenge: DigestChallenge | None = None

    def __repr__(self) -> str:
        return (
            f"<RelayAuthenticator relay={self.relayURI} own={self.ownURI}"
            f" username={self._username!r} pending={self.pendingTransactionID!r}>"
        )

    @property
    def pendingTransactionID(self) -> str | None:
        """
        The transaction id of the AUTH awaiting its response, if any.
        """
        return None if self._pending is None else self._pending.transactionID

    @property
    def digestURI(self) -> str:
        """
        The digest C{uri}: the rightmost To-Path URI (RFC 4976 section 9.1).
        """
        return self.relayURI.serialize()

    def firstRequest(self) -> MSRPRequest:
        """
        Start an AUTH exchange (RFC 4976 section 5.1).

        The AUTH has To-Path = L{via} + L{relayURI}, From-Path = L{ownURI},
        no body, C{Expires} if L{expires} is set, and C{Authorization} only
        if an earlier success gave a C{nextnonce}.  Starting anew abandons
        an exchange in progress.

        @return: The AUTH request to send.
        """
        self._challenges = 0
        self._answered = None
        challenge, self._nextChallenge = self._nextChallenge, None
        if challenge is not None and self._username is not None:
            return self._send(challenge, preemptive=True)
        return self._send(None)

    def _send(
        self, challenge: DigestChallenge | None, preemptive: bool = False
    ) -> MSRPRequest:
        """
        Build and remember an AUTH.

        @param challenge: The challenge to answer, or L{None}.
        @param preemptive: Whether C{challenge} is a C{nextnonce} rather
            than a challenge received for this exchange.
        @return: The request.
        """
        headers: list[tuple[str, str]] = []
        if challenge is not None:
            headers.append(("Authorization", self._credentials(challenge)))
        if self.expires is not None:
            headers.append(("Expires", str(self.expires)))
        request = buildRequest(
            MSRPMethod.AUTH, self.via + (self.relayURI,), (self.ownURI,), headers
        )
        self._pending = request
        self._answered = challenge
        self._preemptive = preemptive
        return request

    def _credentials(self, challenge: DigestChallenge) -> str:
        """
        The C{Authorization} value answering a challenge (RFC 4976 sections
        7, 9.1; RFC 2617 section 3.2.2).

        @param challenge: The challenge.
        @return: C{Digest username=..., ...}.
        """
        assert self._username is not None and self._password is not None
        uri = self.digestURI
        parts = [
            f"username={_quoted(self._username)}",
            f"realm={_quoted(challenge.realm)}",
            f"nonce={_quoted(challenge.nonce)}",
            f"uri={_quoted(uri)}",
        ]
        if challenge.qop is None:
            self._cnonce = self._nc = None
        else:
            count = self._nonceCounts.get(challenge.nonce, 0) + 1
            self._nonceCounts = {challenge.nonce: count}
            self._nc = f"{count:08x}"
            self._cnonce = self._cnonceFactory()
        # Without qop, nc, cnonce and qop are all None: the RFC 2069 form.
        response = digestResponse(
            challenge.algorithm,
            self._username,
            challenge.realm,
            self._password,
            MSRPMethod.AUTH.value,
            uri,
            challenge.nonce,
            self._nc,
            self._cnonce,
            challenge.qop,
        )
        parts.append(f"response={_quoted(response)}")
        if challenge.algorithmGiven:
            parts.append(f"algorithm={challenge.algorithm.value}")
        if challenge.qop is not None:
            assert self._cnonce is not None
            parts.append(f"cnonce={_quoted(self._cnonce)}")
        if challenge.opaque is not None:
            parts.append(f"opaque={_quoted(challenge.opaque)}")
        if challenge.qop is not None:
            parts.append(f"qop={challenge.qop}")
            parts.append(f"nc={self._nc}")
        return "Digest " + ", ".join(parts)

    def responseReceived(self, response: MSRPResponse) -> MSRPRequest | RelayAuthorized:
        """
        Handle the relay's response to the pending AUTH.

        @param response: The response.
        @return: The next AUTH to send (answering a C{401} challenge), or
            L{RelayAuthorized} for a C{200}.
        @raise RelayAuthError: A subclass for each failure: no credentials
            (L{RelayCredentialsRequired}), credentials refused
            (L{RelayCredentialsRejected}), unusable challenge
            (L{RelayChallengeError}), C{403} (L{RelayForbidden}), C{423}
            (L{RelayIntervalOutOfBounds}), other failures
            (L{RelayRejected}), unusable responses (L{RelayProtocolError},
            L{RelayMutualAuthFailed}).  The exchange is over then, except
            for a response to another transaction (L{RelayProtocolError}),
            which leaves the AUTH pending.
        """
        pending = self._pending
        if pending is None:
            raise RelayProtocolError("no AUTH is pending", response)
        if response.transactionID != pending.transactionID:
            raise RelayProtocolError(
                f"response to transaction {response.transactionID!r},"
                f" expected {pending.transactionID!r}",
                response,
            )
        answered = self._answered
        preemptive = self._preemptive
        self._pending = None
        try:
            if response.code == 401:
                # A refused nextnonce is answered like a first challenge.
                return self._challenged(response, None if preemptive else answered)
            if 200 <= response.code < 300:
                return self._authorized(response, answered)
            if response.code == 403:
                raise RelayForbidden(
                    "the relay refuses to authorize us (403)", response
                )
            if response.code == 423:
                minimum = _optionalNumber(response, "Min-Expires")
                maximum = _optionalNumber(response, "Max-Expires")
                raise RelayIntervalOutOfBounds(
                    f"Expires {self.expires} out of bounds"
                    f" (Min-Expires {minimum}, Max-Expires {maximum})",
                    response,
                    minimum,
                    maximum,
                )
            raise RelayRejected(
                f"the relay rejected AUTH: {response.code} {response.comment or ''}".rstrip(),
                response,
            )
        except RelayAuthError:
            self._answered = None
            raise

    def _challenged(
        self, response: MSRPResponse, answered: DigestChallenge | None
    ) -> MSRPRequest:
        """
        Answer a C{401} (RFC 4976 section 5.1).

        @param response: The 401.
        @param answered: The challenge the AUTH answered, if any.
        @return: The AUTH with credentials.
        @raise RelayAuthError: If it cannot or must not be answered.
        """
        if self._username is None:
            raise RelayCredentialsRequired(
                "the relay requires authentication but no relay_username"
                " and relay_password are configured",
                response,
            )
        try:
            offered = response.wwwAuthenticate
        except MSRPParseError as e:
            raise RelayChallengeError(
                f"malformed challenge: {e.reason}", response
            ) from None
        challenges: list[DigestChallenge] = []
        problems: list[str] = []
        for parameters in offered:
            try:
                challenges.append(DigestChallenge.fromParameters(parameters))
            except RelayChallengeError as e:
                problems.append(e.reason)
        if not challenges:
            raise RelayChallengeError(
                "401 without a usable Digest challenge"
                + (f": {'; '.join(problems)}" if problems else ""),
                response,
            )
        challenges.sort(key=lambda c: _PREFERENCE.index(c.algorithm))
        challenge = challenges[0]
        if answered is not None and not challenge.stale:
            raise RelayCredentialsRejected(
                "the relay rejected our credentials (401 without stale=true)", response
            )
        self._challenges += 1
        if self._challenges > self._maxChallenges:
            raise RelayCredentialsRejected(
                f"still challenged after {self._maxChallenges} answers", response
            )
        return self._send(challenge)

    def _authorized(
        self, response: MSRPResponse, answered: DigestChallenge | None
    ) -> RelayAuthorized:
        """
        Accept a C{200} (RFC 4976 sections 5.1, 6.3, 9.1).

        @param response: The 200.
        @param answered: The challenge the AUTH answered, if any.
        @return: The outcome.
        @raise RelayProtocolError: If Use-Path is missing or unusable, or a
            header is malformed.
        @raise RelayMutualAuthFailed: If C{rspauth} is wrong.
        """
        try:
            usePath = response.usePath
            info = response.authenticationInfo
        except MSRPParseError as e:
            raise RelayProtocolError(e.reason, response) from None
        if not usePath:
            raise RelayProtocolError("200 to AUTH without Use-Path", response)
        for uri in usePath:
            # RFC 4976 sections 4.2, 8: Use-Path URIs carry an explicit port.
            if uri.port is None:
                raise RelayProtocolError(f"Use-Path URI without port: {uri}", response)
        expires = _optionalNumber(response, "Expires")
        nextNonce: str | None = None
        if info is not None:
            self._checkResponseAuth(info, answered, response)
            nextNonce = info.get("nextnonce")
            if nextNonce is not None and answered is not None:
                self._nextChallenge = DigestChallenge(
                    realm=answered.realm,
                    nonce=nextNonce,
                    algorithm=answered.algorithm,
                    algorithmGiven=answered.algorithmGiven,
                    qop=answered.qop,
                    opaque=answered.opaque,
                    stale=False,
                )
        self._answered = None
        return RelayAuthorized(usePath, self.ownURI, expires, nextNonce, response)

    def _checkResponseAuth(
        self,
        info: AuthParameters,
        answered: DigestChallenge | None,
        response: MSRPResponse,
    ) -> None:
        """
        Verify C{rspauth} if the relay sent one for our credentials.

        @param info: The parsed C{Authentication-Info}.
        @param answered: The challenge our AUTH answered.
        @param response: The 200.
        @raise RelayMutualAuthFailed: If it does not match.
        """
        rspauth = info.get("rspauth")
        if rspauth is None or answered is None:
            return
        assert self._username is not None and self._password is not None
        if answered.qop is None or self._nc is None or self._cnonce is None:
            return
        expected = digestResponseAuth(
            answered.algorithm,
            self._username,
            answered.realm,
            self._password,
            self.digestURI,
            answered.nonce,
            self._nc,
            self._cnonce,
            answered.qop,
        )
        if not rspauth.isascii() or not secrets.compare_digest(
            rspauth.lower(), expected
        ):
            raise RelayMutualAuthFailed(
                "rspauth does not match our credentials", response
            )
