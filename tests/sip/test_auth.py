# -*- test-case-name: tests.sip.test_auth -*-
"""
Tests for L{stoxgw.sip.auth}: digest computation against the RFC 2617 and
RFC 7616 examples, and answering SIP challenges (RFC 3261 section 22, RFC
8760).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.sip.auth import DigestClient, DigestCredentials, digestResponse
from stoxgw.sip.headers import AuthHeader, Headers
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.uri import SIPURI

RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def request(method: str = "INVITE") -> SIPRequest:
    return SIPRequest(
        method,
        SIPURI("sip", "example.com", user="room"),
        Headers.of(
            ("From", "<sip:gw@example.org>;tag=a"),
            ("To", "<sip:room@example.com>"),
            ("Call-ID", "c"),
            ("CSeq", f"1 {method}"),
        ),
    )


def challenge(status: int, *values: str) -> SIPResponse:
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    response = request().makeResponse(status, toTag="t")
    for value in values:
        response = response.addHeader(name, value)
    return response


class DigestResponseTests(SynchronousTestCase):
    """
    The published examples.
    """

    def test_rfc2617(self) -> None:
        """
        RFC 2617 section 3.5: MD5, qop=auth.
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

    def test_rfc7616(self) -> None:
        """
        RFC 7616 section 3.9.1: the MD5 and SHA-256 examples.
        """
        common = dict(
            username="Mufasa",
            realm="http-auth@example.org",
            password="Circle of Life",
            method="GET",
            uri="/dir/index.html",
            nonce=RFC7616_NONCE,
            qop="auth",
            nc="00000001",
            cnonce=RFC7616_CNONCE,
        )
        self.assertEqual(
            digestResponse(algorithm="MD5", **common),  # type: ignore[arg-type]
            "8ca523f5e9506fed4657c9700eebdbec",
        )
        self.assertEqual(
            digestResponse(algorithm="SHA-256", **common),  # type: ignore[arg-type]
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        )

    def test_noQop(self) -> None:
        """
        RFC 2069 form: H(HA1:nonce:HA2).
        """
        import hashlib

        ha1 = hashlib.md5(b"u:r:p").hexdigest()
        ha2 = hashlib.md5(b"INVITE:sip:x").hexdigest()
        expected = hashlib.md5(f"{ha1}:n:{ha2}".encode()).hexdigest()
        self.assertEqual(
            digestResponse(
                algorithm="MD5",
                username="u",
                realm="r",
                password="p",
                method="INVITE",
                uri="sip:x",
                nonce="n",
            ),
            expected,
        )


class DigestClientTests(SynchronousTestCase):
    """
    Answering challenges.
    """

    def client(self, realm: str | None = None) -> DigestClient:
        return DigestClient(DigestCredentials("Mufasa", "Circle of Life", realm))

    def test_answer401(self) -> None:
        """
        RFC 3261 22.2: a 401 is answered with Authorization carrying the
        RFC 7616 fields; the response matches the computation.
        """
        fields = self.client().authorize(
            request(),
            challenge(
                401,
                f'Digest realm="example.com", nonce="{RFC7616_NONCE}", '
                f'qop="auth", opaque="{RFC7616_OPAQUE}", algorithm=MD5',
            ),
            cnonce="abc",
        )
        assert fields is not None
        [(name, value)] = fields
        self.assertEqual(name, "Authorization")
        answer = AuthHeader.parse(value)
        self.assertEqual(answer.parameter("username"), "Mufasa")
        self.assertEqual(answer.parameter("uri"), "sip:room@example.com")
        self.assertEqual(answer.parameter("qop"), "auth")
        self.assertEqual(answer.parameter("nc"), "00000001")
        self.assertEqual(answer.parameter("opaque"), RFC7616_OPAQUE)
        self.assertEqual(
            answer.parameter("response"),
            digestResponse(
                algorithm="MD5",
                username="Mufasa",
                realm="example.com",
                password="Circle of Life",
                method="INVITE",
                uri="sip:room@example.com",
                nonce=RFC7616_NONCE,
                qop="auth",
                nc="00000001",
                cnonce="abc",
            ),
        )

    def test_answer407(self) -> None:
        """
        RFC 3261 22.3: a 407 is answered with Proxy-Authorization.
        """
        fields = self.client().authorize(
            request(), challenge(407, 'Digest realm="proxy", nonce="n1"')
        )
        assert fields is not None
        self.assertEqual(fields[0][0], "Proxy-Authorization")
        self.assertIsNone(AuthHeader.parse(fields[0][1]).parameter("qop"))

    def test_prefersSHA256(self) -> None:
        """
        RFC 8760 2.4: with SHA-256 and MD5 challenges, SHA-256 is used.
        """
        fields = self.client().authorize(
            request(),
            challenge(
                401,
                'Digest realm="r", nonce="n", algorithm=MD5, qop="auth"',
                'Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth"',
            ),
        )
        assert fields is not None
        self.assertEqual(len(fields), 1)
        self.assertEqual(
            AuthHeader.parse(fields[0][1]).parameter("algorithm"), "SHA-256"
        )

    def test_sameNonceTwiceFails(self) -> None:
        """
        RFC 3261 22.3: a new challenge for the nonce we answered (no
        stale=true) means wrong credentials: no second try.
        """
        client = self.client()
        response = challenge(401, 'Digest realm="r", nonce="n", qop="auth"')
        fields = client.authorize(request(), response)
        assert fields is not None
        retried = request().addHeader(*fields[0])
        self.assertIsNone(client.authorize(retried, response))
        stale = challenge(401, 'Digest realm="r", nonce="n", qop="auth", stale=true')
        again = client.authorize(retried, stale)
        assert again is not None
        self.assertEqual(AuthHeader.parse(again[0][1]).parameter("nc"), "00000002")

    def test_unanswerable(self) -> None:
        """
        No credentials, another realm, an unknown algorithm, or a qop we
        do not know: nothing.
        """
        response = challenge(401, 'Digest realm="r", nonce="n"')
        self.assertIsNone(DigestClient(None).authorize(request(), response))
        self.assertIsNone(self.client(realm="other").authorize(request(), response))
        self.assertIsNone(
            self.client().authorize(
                request(),
                challenge(401, 'Digest realm="r", nonce="n", algorithm=SHA-512'),
            )
        )
        self.assertIsNone(
            self.client().authorize(
                request(), challenge(401, 'Digest realm="r", nonce="n", qop="x-other"')
            )
        )
        self.assertIsNone(
            self.client().authorize(request(), request().makeResponse(403))
        )

    def test_authInt(self) -> None:
        """
        qop=auth-int when it is the only one offered.
        """
        fields = self.client().authorize(
            request(), challenge(401, 'Digest realm="r", nonce="n", qop="auth-int"')
        )
        assert fields is not None
        self.assertEqual(AuthHeader.parse(fields[0][1]).parameter("qop"), "auth-int")

    def test_passwordNotInRepr(self) -> None:
        """
        Credentials never show their password.
        """
        self.assertNotIn("Circle", repr(DigestCredentials("u", "Circle of Life")))
