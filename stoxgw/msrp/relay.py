# -*- test-case-name: tests.msrp.test_relay -*-
"""
The client side of MSRP relays (RFC 4976), sans-IO.

A client that uses a relay opens a connection to it and sends AUTH
(RFC 4976 sections 4.1, 5.1).  The relay challenges it with C{401} and a
C{WWW-Authenticate: Digest} header; the client repeats the AUTH with an
C{Authorization} header computed as HTTP digest (RFC 2617 with the changes
of RFC 4976 section 9.1: method C{AUTH}, the digest URI is the rightmost
To-Path URI, i.e. the relay's URI; qop C{auth}, cnonce and nc always sent);
the relay answers C{200} with C{Use-Path} (the relay URIs to use) and
C{Expires} (how long they stay valid), or C{403} (not authorized), or
C{423} with C{Min-Expires}/C{Max-Expires} (RFC 4976 sections 4.6, 6.3).

L{RelayAuthenticator} is that exchange as a state object that a connection
drives::

    authenticator = RelayAuthenticator(relayURI, ownURI, username, password)
    send(authenticator.firstRequest())
    ...
    outcome = authenticator.responseReceived(response)  # may raise RelayAuthError
    if isinstance(outcome, MSRPRequest):
        send(outcome)                  # the AUTH answering a challenge
    else:
        outcome.sdpPath                # RelayAuthorized: our a=path
        outcome.toPath(peerPath)       # To-Path of our SEND/REPORT requests
        outcome.refreshDelay()         # when to call firstRequest() again

Paths (RFC 4976 section 5.1): the To-Path of outgoing requests is the
Use-Path followed by the peer's SDP path; the SDP path we advertise is the
Use-Path reversed followed by our own URI.  See L{toPathThroughRelays} and
L{sdpPathThroughRelays}.

Digest algorithms: C{MD5} (RFC 2617, the one RFC 4976 names) and
C{SHA-256} (RFC 7616; Kamailio's C{auth} module can issue it).  The
C{-sess} variants are refused: RFC 4976 section 9.1 forbids MD5-sess.  A
challenge without qop (RFC 2069 style, which RFC 4976 section 9.1 forbids
but Kamailio's C{auth_get_www_authenticate} sends unless asked for qop) is
answered without qop, cnonce and nc, as RFC 2617 section 3.2.2.1 describes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Sequence

from stoxgw.formats.digest import digestHash
from stoxgw.formats.digest import digestResponse as sharedDigestResponse
from stoxgw.msrp.message import (
    AuthParameters,
    MSRPMethod,
    MSRPParseError,
    MSRPRequest,
    MSRPResponse,
    buildRequest,
)
from stoxgw.msrp.uri import MSRPURI

__all__ = [
    "DEFAULT_MAX_CHALLENGES",
    "REFRESH_MARGIN",
    "DigestAlgorithm",
    "DigestChallenge",
    "digestResponse",
    "digestResponseAuth",
    "RelayAuthError",
    "RelayCredentialsRequired",
    "RelayCredentialsRejected",
    "RelayChallengeError",
    "RelayForbidden",
    "RelayIntervalOutOfBounds",
    "RelayRejected",
    "RelayProtocolError",
    "RelayMutualAuthFailed",
    "RelayAuthorized",
    "RelayAuthenticator",
    "toPathThroughRelays",
    "sdpPathThroughRelays",
]

DEFAULT_MAX_CHALLENGES = 3
"""
How many challenges one AUTH exchange answers at most (a relay that keeps
sending C{stale=true} challenges ends in L{RelayCredentialsRejected}).
"""

REFRESH_MARGIN = 30
"""
Seconds before the Use-Path URIs expire at which L{RelayAuthorized.refreshDelay}
suggests the next AUTH (at least half the lifetime is used).
"""


class DigestAlgorithm(Enum):
    """
    The digest algorithms this client answers (RFC 2617 section 3.2.1,
    RFC 7616 section 3.3).

    @cvar MD5: The default when a challenge names no algorithm.
    @cvar SHA256: C{SHA-256} (RFC 7616).
    """

    MD5 = "MD5"
    SHA256 = "SHA-256"

    def hash(self, text: str) -> str:
        """
        H(data): the lower-case hex digest of the UTF-8 encoded C{text}.

        @param text: The data.
        @return: 32 (MD5) or 64 (SHA-256) hex digits.
        """
        return digestHash(self.value, text)

    @classmethod
    def fromToken(cls, token: str | None) -> DigestAlgorithm | None:
        """
        Look up an C{algorithm} parameter value (case-insensitive).

        @param token: The value, or L{None} when absent (meaning MD5).
        @return: The algorithm, or L{None} if this client does not support
            it (including C{MD5-sess} and C{SHA-256-sess}).
        """
        if token is None:
            return cls.MD5
        for algorithm in cls:
            if algorithm.value.lower() == token.lower():
                return algorithm
        return None


#: Preference among several challenges: the strongest first (RFC 7616 3.7).
_PREFERENCE = (DigestAlgorithm.SHA256, DigestAlgorithm.MD5)


def digestResponse(
    algorithm: DigestAlgorithm,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str | None = None,
    cnonce: str | None = None,
    qop: str | None = None,
) -> str:
    """
    The C{response} value of digest credentials (RFC 2617 section 3.2.2.1,
    RFC 7616 section 3.4.1)::

        A1 = username ":" realm ":" password
        A2 = method ":" uri
        response = KD(H(A1), nonce ":" nc ":" cnonce ":" qop ":" H(A2))
        (without qop: KD(H(A1), nonce ":" H(A2)))

    with C{KD(secret, data) = H(secret ":" data)}.

    @param algorithm: The hash.
    @param username: The user name.
    @param realm: The challenge's realm.
    @param password: The password.
    @param method: C{"AUTH"} for MSRP relays (RFC 4976 section 9.1).
    @param uri: The digest URI: the rightmost To-Path URI (RFC 4976
        section 9.1).
    @param nonce: The challenge's nonce.
    @param nc: The nonce count (8 hex digits), with C{qop}.
    @param cnonce: The client nonce, with C{qop}.
    @param qop: C{"auth"}, or L{None} for a challenge without qop.
    @return: The hex digest.
    @raise ValueError: If C{qop} is given without C{nc} and C{cnonce}.
    """
    if qop is not None and (nc is None or cnonce is None):
        raise ValueError("qop requires nc and cnonce")
    return sharedDigestResponse(
        algorithm=algorithm.value,
        username=username,
        realm=realm,
        password=password,
        method=method,
        uri=uri,
        nonce=nonce,
        qop=qop,
        nc=nc or "",
        cnonce=cnonce or "",
    )


def digestResponseAuth(
    algorithm: DigestAlgorithm,
    username: str,
    realm: str,
    password: str,
    uri: str,
    nonce: str,
    nc: str,
    cnonce: str,
    qop: str,
) -> str:
    """
    The C{rspauth} value a relay proves itself with in
    C{Authentication-Info} (RFC 2617 section 3.2.3): the request digest
    computed with an empty method, C{A2 = ":" uri}.

    @return: The hex digest.
    """
    return digestResponse(
        algorithm, username, realm, password, "", uri, nonce, nc, cnonce, qop
    )


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


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """
    One usable C{WWW-Authenticate: Digest} challenge (RFC 2617 section
    3.2.1, RFC 4976 sections 4.3, 7).

    @ivar realm: The protection space.
    @ivar nonce: The server nonce.
    @ivar algorithm: The hash to use.
    @ivar algorithmGiven: Whether the challenge named the algorithm (then
        the credentials echo it).
    @ivar qop: C{"auth"}, or L{None} if the challenge offered no qop.
    @ivar opaque: The opaque value to echo, or L{None}.
    @ivar stale: Whether the previous credentials were right but the nonce
        was stale (C{stale=true}).
    """

    realm: str
    nonce: str
    algorithm: DigestAlgorithm
    algorithmGiven: bool
    qop: str | None
    opaque: str | None
    stale: bool

    @classmethod
    def fromParameters(cls, parameters: AuthParameters) -> DigestChallenge:
        """
        Check and extract a Digest challenge.

        The C{domain} parameter is ignored (RFC 4976 section 9.1).

        @param parameters: A parsed WWW-Authenticate value.
        @return: The challenge.
        @raise RelayChallengeError: If it is not Digest, lacks realm or
            nonce, names an unsupported algorithm, or offers qop without
            C{auth} (C{auth-int} is forbidden, RFC 4976 section 9.1).
        """
        if parameters.scheme is None or parameters.scheme.lower() != "digest":
            raise RelayChallengeError(f"not a Digest challenge: {parameters.scheme!r}")
        realm = parameters.get("realm")
        nonce = parameters.get("nonce")
        if realm is None or nonce is None:
            raise RelayChallengeError("Digest challenge without realm or nonce")
        for value in (realm, nonce, parameters.get("opaque") or ""):
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                # Legal in a quoted-string, but our answer could not quote
                # it back (found by fuzz/fuzz_msrp_relay.py).
                raise RelayChallengeError(f"control character in {value!r}")
        algorithmToken = parameters.get("algorithm")
        algorithm = DigestAlgorithm.fromToken(algorithmToken)
        if algorithm is None:
            raise RelayChallengeError(
                f"unsupported digest algorithm {algorithmToken!r}"
            )
        qopOptions = parameters.get("qop")
        qop: str | None = None
        if qopOptions is not None:
            offered = [option.strip().lower() for option in qopOptions.split(",")]
            if "auth" not in offered:
                raise RelayChallengeError(f"no usable qop in {qopOptions!r}")
            qop = "auth"
        stale = (parameters.get("stale") or "").lower() == "true"
        return cls(
            realm=realm,
            nonce=nonce,
            algorithm=algorithm,
            algorithmGiven=algorithmToken is not None,
            qop=qop,
            opaque=parameters.get("opaque"),
            stale=stale,
        )


class RelayAuthError(Exception):
    """
    An AUTH exchange with a relay ended without authorization.

    @ivar reason: What went wrong.
    @ivar response: The response that ended it, if any.
    """

    def __init__(self, reason: str, response: MSRPResponse | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.response = response

    @property
    def code(self) -> int | None:
        """
        The status code of L{response}, if there is one.
        """
        return None if self.response is None else self.response.code


class RelayCredentialsRequired(RelayAuthError):
    """
    The relay challenged (C{401}) but no username and password are
    configured (C{relay_username}, C{relay_password}).
    """


class RelayCredentialsRejected(RelayAuthError):
    """
    The relay answered our credentials with another C{401} that is not
    C{stale=true} (RFC 4976 section 6.3: a remote AUTH failure), or kept
    challenging beyond L{DEFAULT_MAX_CHALLENGES}.
    """


class RelayChallengeError(RelayAuthError):
    """
    The C{401} carried no challenge this client can answer.
    """


class RelayForbidden(RelayAuthError):
    """
    C{403}: the client is authenticated but not authorized to use the relay
    (RFC 4976 section 6.3).
    """


class RelayIntervalOutOfBounds(RelayAuthError):
    """
    C{423}: the requested C{Expires} is not acceptable (RFC 4976 sections
    4.6, 6.3).  A new exchange with an C{expires} within the bounds may
    succeed.

    @ivar minExpires: The relay's C{Min-Expires}, if given.
    @ivar maxExpires: The relay's C{Max-Expires}, if given.
    """

    def __init__(
        self,
        reason: str,
        response: MSRPResponse,
        minExpires: int | None,
        maxExpires: int | None,
    ) -> None:
        super().__init__(reason, response)
        self.minExpires = minExpires
        self.maxExpires = maxExpires


class RelayRejected(RelayAuthError):
    """
    Any other final failure response (e.g. C{400}, C{481}, C{500}).
    """


class RelayProtocolError(RelayAuthError):
    """
    The relay's response cannot be used: no AUTH is pending or the
    transaction id differs, a 200 without a usable C{Use-Path}, or a
    malformed header.
    """


class RelayMutualAuthFailed(RelayAuthError):
    """
    The C{rspauth} of the relay's C{Authentication-Info} does not prove
    knowledge of our password (RFC 2617 section 3.2.3): the peer is not the
    relay we meant to authenticate with.
    """


def toPathThroughRelays(
    usePath: Sequence[MSRPURI], peerPath: Sequence[MSRPURI]
) -> tuple[MSRPURI, ...]:
    """
    The To-Path of our requests to a peer (RFC 4976 section 5.1): our
    relays' Use-Path, then the peer's SDP path.

    @param usePath: The Use-Path of the last (outermost) AUTH.
    @param peerPath: The peer's C{a=path} URIs in order.
    @return: The To-Path URIs.
    @raise ValueError: If C{peerPath} is empty.
    """
    if not peerPath:
        raise ValueError("the peer's path is empty")
    return tuple(usePath) + tuple(peerPath)


def sdpPathThroughRelays(
    usePath: Sequence[MSRPURI], ownURI: MSRPURI
) -> tuple[MSRPURI, ...]:
    """
    The C{a=path} we advertise (RFC 4976 section 5.1): the Use-Path
    reversed, then our own URI.

    @param usePath: The Use-Path of the last (outermost) AUTH.
    @param ownURI: Our own MSRP URI.
    @return: The path URIs.
    """
    return tuple(reversed(tuple(usePath))) + (ownURI,)


@dataclass(frozen=True, slots=True)
class RelayAuthorized:
    """
    A successful AUTH (RFC 4976 sections 5.1, 6.3).

    @ivar usePath: The relay URIs in To-Path order (the C{Use-Path}).
    @ivar ownURI: Our own URI (the From-Path of the AUTH).
    @ivar expires: Seconds the URIs stay valid (C{Expires}), or L{None}
        if the relay did not say.
    @ivar nextNonce: The C{nextnonce} of C{Authentication-Info}, if any;
        the next AUTH answers it without waiting for a challenge.
    @ivar response: The C{200} response.
    """

    usePath: tuple[MSRPURI, ...]
    ownURI: MSRPURI
    expires: int | None
    nextNonce: str | None
    response: MSRPResponse = field(repr=False, compare=False)

    @property
    def sdpPath(self) -> tuple[MSRPURI, ...]:
        """
        The C{a=path} to advertise: see L{sdpPathThroughRelays}.
        """
        return sdpPathThroughRelays(self.usePath, self.ownURI)

    def toPath(self, peerPath: Sequence[MSRPURI]) -> tuple[MSRPURI, ...]:
        """
        The To-Path of a request to a peer: see L{toPathThroughRelays}.

        @param peerPath: The peer's C{a=path} URIs.
        @return: The To-Path URIs.
        """
        return toPathThroughRelays(self.usePath, peerPath)

    def refreshDelay(self, margin: int = REFRESH_MARGIN) -> float | None:
        """
        When to AUTH again so the relay URIs never lapse (RFC 4976 section
        4.6): C{margin} seconds before expiry, but not before half the
        lifetime.

        A relay may hand out new URIs on the next AUTH (Kamailio does):
        sessions already set up keep the URIs they advertised, which stay
        valid until their own expiry.

        @param margin: Seconds of safety before expiry.
        @return: Seconds from the 200 to the next AUTH, or L{None} if the
            relay gave no C{Expires}.
        """
        if self.expires is None:
            return None
        return float(max(self.expires / 2, self.expires - margin))


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
            response = digestResponse(
                challenge.algorithm,
                self._username,
                challenge.realm,
                self._password,
                MSRPMethod.AUTH.value,
                uri,
                challenge.nonce,
            )
        else:
            count = self._nonceCounts.get(challenge.nonce, 0) + 1
            self._nonceCounts = {challenge.nonce: count}
            self._nc = f"{count:08x}"
            self._cnonce = self._cnonceFactory()
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
