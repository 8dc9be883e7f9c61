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

L{stoxgw.msrp.relayauth.RelayAuthenticator} is that exchange as a state
object that a connection drives::

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

from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

from stoxgw.formats.digest import digestHash
from stoxgw.formats.digest import digestResponse as sharedDigestResponse
from stoxgw.msrp.message import AuthParameters, MSRPResponse
from stoxgw.msrp.uri import MSRPURI

__all__ = [
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
    "toPathThroughRelays",
    "sdpPathThroughRelays",
]

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
    challenging beyond L{stoxgw.msrp.relayauth.DEFAULT_MAX_CHALLENGES}.
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
