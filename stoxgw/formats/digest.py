# -*- test-case-name: tests.formats.test_digest -*-
"""
HTTP digest computation (RFC 2617, RFC 7616), shared by the SIP client
(401/407 challenges, RFC 3261 22.4) and the MSRP relay client (AUTH,
RFC 4976 section 5): one place for the formula, since C{sip} and C{msrp}
never import each other.

Pure, standard library only.
"""

from __future__ import annotations

import hashlib

__all__ = ["ALGORITHMS", "digestHash", "digestResponse"]

#: Hash functions by digest algorithm name (without C{-sess}).
ALGORITHMS = {
    "MD5": "md5",
    "SHA-256": "sha256",
}


def digestHash(algorithm: str, data: str | bytes) -> str:
    """
    H(data): the lower-case hex digest, text encoded as UTF-8.

    @param algorithm: C{MD5} or C{SHA-256}, optionally with C{-sess}, in any
        case.
    @raise KeyError: Unsupported algorithm.
    """
    name = ALGORITHMS[algorithm.upper().removesuffix("-SESS")]
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.new(name, data).hexdigest()


def digestResponse(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str = "00000001",
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """
    Compute the C{response} value (RFC 7616 section 3.4.1, RFC 2617
    section 3.2.2; without qop, RFC 2069)::

        A1 = username ":" realm ":" password      (-sess: H(A1) ":" nonce ":" cnonce)
        A2 = method ":" uri                        (auth-int: ... ":" H(body))
        response = H(H(A1) ":" nonce ":" nc ":" cnonce ":" qop ":" H(A2))
                   (without qop: H(H(A1) ":" nonce ":" H(A2)))

    @param algorithm: C{MD5}, C{MD5-sess}, C{SHA-256} or C{SHA-256-sess}.
    @param method: The request method (C{AUTH} for MSRP relays; empty for
        the C{rspauth} a server proves itself with).
    @param qop: C{auth}, C{auth-int} or L{None}.
    @param body: The entity body, for C{auth-int}: hashed as its bytes.
    @raise KeyError: Unsupported algorithm.
    """
    ha1 = digestHash(algorithm, f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = digestHash(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = digestHash(algorithm, f"{method}:{uri}:{digestHash(algorithm, body)}")
    else:
        ha2 = digestHash(algorithm, f"{method}:{uri}")
    if qop:
        return digestHash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return digestHash(algorithm, f"{ha1}:{nonce}:{ha2}")
