# -*- test-case-name: tests.formats.test_digest -*-
"""
Tests for L{stoxgw.formats.digest}, against the RFC examples and values
computed here from L{hashlib} by the RFC formulas.
"""

from __future__ import annotations

import hashlib

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.formats.digest import digestHash, digestResponse


def md5(text: str | bytes) -> str:
    return hashlib.md5(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


class DigestTests(SynchronousTestCase):
    """
    L{digestResponse}.
    """

    def test_rfc2617Example(self) -> None:
        """
        RFC 2617 section 3.5: Mufasa's GET gives 6629fae49393a05397450978507c4ef1.
        """
        self.assertEqual(
            digestResponse(
                algorithm="MD5",
                username="Mufasa",
                realm="testrealm@host.com",
                password="Circle Of Life",
                method="GET",
                uri="/dir/index.html",
                nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                qop="auth",
                nc="00000001",
                cnonce="0a4f113b",
            ),
            "6629fae49393a05397450978507c4ef1",
        )

    def test_authIntHashesBodyBytes(self) -> None:
        """
        With C{auth-int}, H(entity-body) is the hash of the body's bytes as
        sent, also for bytes that are not ASCII.
        """
        body = "Grüße".encode("utf-8") + b"\xff"
        ha1 = md5("u:r:p")
        ha2 = md5(f"MESSAGE:sip:x@y:{md5(body)}")
        expected = md5(f"{ha1}:n:00000002:c:auth-int:{ha2}")
        self.assertEqual(
            digestResponse(
                algorithm="MD5", username="u", realm="r", password="p", method="MESSAGE",
                uri="sip:x@y", nonce="n", qop="auth-int", nc="00000002", cnonce="c", body=body,
            ),
            expected,
        )

    def test_withoutQop(self) -> None:
        """
        RFC 2069 form: H(H(A1):nonce:H(A2)).
        """
        expected = md5(f"{md5('u:r:p')}:n:{md5('AUTH:msrp://h:1/s;tcp')}")
        self.assertEqual(
            digestResponse(
                algorithm="md5", username="u", realm="r", password="p", method="AUTH",
                uri="msrp://h:1/s;tcp", nonce="n",
            ),
            expected,
        )

    def test_sha256Sess(self) -> None:
        """
        SHA-256-sess: H(A1) becomes H(H(A1):nonce:cnonce) (RFC 7616 3.4.2).
        """
        def h(text: str) -> str:
            return hashlib.sha256(text.encode("utf-8")).hexdigest()

        ha1 = h(f"{h('u:r:p')}:n:c")
        expected = h(f"{ha1}:n:00000001:c:auth:{h('INVITE:sip:a@b')}")
        self.assertEqual(
            digestResponse(
                algorithm="SHA-256-sess", username="u", realm="r", password="p",
                method="INVITE", uri="sip:a@b", nonce="n", qop="auth", cnonce="c",
            ),
            expected,
        )

    def test_unsupported(self) -> None:
        """
        An unknown algorithm is a L{KeyError}.
        """
        self.assertRaises(KeyError, digestHash, "SHA-512-256", "x")
