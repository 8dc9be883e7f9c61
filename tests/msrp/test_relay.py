# -*- test-case-name: tests.msrp.test_relay -*-
"""
Tests for L{stoxgw.msrp.relay} and L{stoxgw.msrp.relayauth}: the RFC 4976
AUTH exchange (sections 5.1, 6.3, 9.1), the digest computation and the
relay paths (R-168).

Digest values are checked against values computed here from L{hashlib}
by the RFC 2617 / RFC 7616 formula, independently of the module.
"""

from __future__ import annotations

import hashlib

from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.msrp.builders import buildResponse
from stoxgw.msrp.message import (
    MSRPParseError,
    AuthParameters,
    MSRPRequest,
    MSRPResponse,
    parseAuthParameters,
)
from stoxgw.msrp.parser import parseMessage
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
    sdpPathThroughRelays,
    toPathThroughRelays,
)
from stoxgw.msrp.relayauth import DEFAULT_MAX_CHALLENGES, RelayAuthenticator
from stoxgw.msrp.uri import MSRPURI

FIXTURES = FilePath(__file__).parent().parent().child("fixtures").child("msrp")

INTRA = MSRPURI.fromString("msrps://alice@intra.example.com;tcp")
INTRA_USE = MSRPURI.fromString("msrps://intra.example.com:9000/jui787s2f;tcp")
EXTRA = MSRPURI.fromString("msrps://extra.example.com;tcp")
EXTRA_USE = MSRPURI.fromString("msrps://extra.example.com:9000/mywdEe1233;tcp")
ALICE = MSRPURI.fromString("msrps://alice.example.com:9892/98cjs;tcp")

RELAY = MSRPURI.fromString("msrp://relay.example.com:2855;tcp")
OWN = MSRPURI.fromString("msrp://gw.example.com:7000/own123;tcp")
USE = MSRPURI.fromString("msrp://relay.example.com:2855/s1x2x3;tcp")


def fixture(name: str) -> bytes:
    """
    Load one fixture.

    @param name: The file name.
    @return: Its bytes.
    """
    return FIXTURES.child(name).getContent()


def md5(text: str) -> str:
    """
    MD5 hex of UTF-8 text, straight from L{hashlib}.
    """
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def sha256(text: str) -> str:
    """
    SHA-256 hex of UTF-8 text, straight from L{hashlib}.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fixtureResponse(name: str, transactionID: str) -> MSRPResponse:
    """
    Parse an RFC example response, re-addressed to our transaction.

    @param name: The fixture file.
    @param transactionID: Our pending transaction id, replacing the RFC's.
    @return: The response.
    """
    message = parseMessage(fixture(name))
    assert isinstance(message, MSRPResponse)
    data = message.serialize().replace(
        message.transactionID.encode("ascii"), transactionID.encode("ascii")
    )
    response = parseMessage(data)
    assert isinstance(response, MSRPResponse)
    return response


def respond(
    request: MSRPRequest, code: int, comment: str, headers: list[tuple[str, str]]
) -> MSRPResponse:
    """
    A relay's response to an AUTH (RFC 4975 section 7.2: To-Path = the
    From-Path, From-Path = the relay).

    @return: The response.
    """
    return buildResponse(
        request.transactionID,
        code,
        comment,
        request.fromPath,
        request.toPath[-1:],
        headers,
    )


def credentials(request: MSRPRequest) -> AuthParameters:
    """
    The parsed Authorization of an AUTH.
    """
    value = request.authorization
    assert value is not None
    return value


CHALLENGE = 'Digest realm="relay.example.com", nonce="n0nce", qop="auth", algorithm=MD5'


class DigestTests(SynchronousTestCase):
    """
    L{digestResponse} and L{digestResponseAuth} (RFC 2617 section 3.2.2.1,
    RFC 7616 section 3.4.1, RFC 4976 section 9.1).
    """

    def test_rfc2617Example(self) -> None:
        """
        RFC 2617 section 3.5's example gives its printed response
        6629fae4...; RFC 4976 section 5.1 reuses that very value, nonce and
        cnonce in its AUTH example.
        """
        self.assertEqual(
            digestResponse(
                DigestAlgorithm.MD5,
                "Mufasa",
                "testrealm@host.com",
                "Circle Of Life",
                "GET",
                "/dir/index.html",
                "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                "00000001",
                "0a4f113b",
                "auth",
            ),
            "6629fae49393a05397450978507c4ef1",
        )
        rfc4976 = credentials(parseMessage(fixture("rfc4976-5.1-auth-49fi.msrp")))  # type: ignore[arg-type]
        self.assertEqual(rfc4976.get("response"), "6629fae49393a05397450978507c4ef1")

    def test_md5WithQop(self) -> None:
        """
        RFC 4976 section 9.1: method AUTH, digest URI the relay's URI.
        """
        ha1 = md5("alice:relay.example.com:secret")
        ha2 = md5("AUTH:msrp://relay.example.com:2855;tcp")
        self.assertEqual(
            digestResponse(
                DigestAlgorithm.MD5,
                "alice",
                "relay.example.com",
                "secret",
                "AUTH",
                "msrp://relay.example.com:2855;tcp",
                "n0nce",
                "00000001",
                "c0ffee",
                "auth",
            ),
            md5(f"{ha1}:n0nce:00000001:c0ffee:auth:{ha2}"),
        )

    def test_sha256WithQop(self) -> None:
        """
        RFC 7616: the same formula with SHA-256.
        """
        ha1 = sha256("alice:r:secret")
        ha2 = sha256("AUTH:msrp://h:1;tcp")
        self.assertEqual(
            digestResponse(
                DigestAlgorithm.SHA256,
                "alice",
                "r",
                "secret",
                "AUTH",
                "msrp://h:1;tcp",
                "n",
                "00000002",
                "c",
                "auth",
            ),
            sha256(f"{ha1}:n:00000002:c:auth:{ha2}"),
        )

    def test_withoutQop(self) -> None:
        """
        RFC 2617 section 3.2.2.1 (RFC 2069 compatibility): without qop the
        response is KD(H(A1), nonce ":" H(A2)).
        """
        ha1 = md5("u:r:p")
        ha2 = md5("AUTH:msrp://h:1;tcp")
        self.assertEqual(
            digestResponse(
                DigestAlgorithm.MD5, "u", "r", "p", "AUTH", "msrp://h:1;tcp", "n"
            ),
            md5(f"{ha1}:n:{ha2}"),
        )

    def test_qopNeedsCounts(self) -> None:
        """
        qop without nc and cnonce is a programming error.
        """
        self.assertRaises(
            ValueError,
            digestResponse,
            DigestAlgorithm.MD5,
            "u",
            "r",
            "p",
            "AUTH",
            "x",
            "n",
            None,
            None,
            "auth",
        )

    def test_responseAuth(self) -> None:
        """
        RFC 2617 section 3.2.3: rspauth uses A2 = ":" uri.
        """
        ha1 = md5("u:r:p")
        ha2 = md5(":msrp://h:1;tcp")
        self.assertEqual(
            digestResponseAuth(
                DigestAlgorithm.MD5,
                "u",
                "r",
                "p",
                "msrp://h:1;tcp",
                "n",
                "00000001",
                "c",
                "auth",
            ),
            md5(f"{ha1}:n:00000001:c:auth:{ha2}"),
        )

    def test_algorithmTokens(self) -> None:
        """
        Absent means MD5; names are case-insensitive; -sess variants are not
        supported (RFC 4976 section 9.1 forbids MD5-sess).
        """
        self.assertIs(DigestAlgorithm.fromToken(None), DigestAlgorithm.MD5)
        self.assertIs(DigestAlgorithm.fromToken("md5"), DigestAlgorithm.MD5)
        self.assertIs(DigestAlgorithm.fromToken("sha-256"), DigestAlgorithm.SHA256)
        self.assertIsNone(DigestAlgorithm.fromToken("MD5-sess"))
        self.assertIsNone(DigestAlgorithm.fromToken("SHA-256-sess"))


class ChallengeTests(SynchronousTestCase):
    """
    L{DigestChallenge.fromParameters} (RFC 4976 sections 7, 9.1).
    """

    def parse(self, value: str) -> DigestChallenge:
        """
        Parse a WWW-Authenticate value into a challenge.
        """
        return DigestChallenge.fromParameters(parseAuthParameters(value))

    def test_rfcChallenge(self) -> None:
        """
        The RFC 4976 section 5.1 challenge: realm, nonce, qop auth, MD5 by
        default.
        """
        response = parseMessage(fixture("rfc4976-5.1-401-49fh.msrp"))
        assert isinstance(response, MSRPResponse)
        challenge = DigestChallenge.fromParameters(response.wwwAuthenticate[0])
        self.assertEqual(
            challenge,
            DigestChallenge(
                realm="intra.example.com",
                nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                algorithm=DigestAlgorithm.MD5,
                algorithmGiven=False,
                qop="auth",
                opaque=None,
                stale=False,
            ),
        )

    def test_qopList(self) -> None:
        """
        A qop list with auth picks auth.
        """
        self.assertEqual(
            self.parse('Digest realm="r", nonce="n", qop="auth-int,auth"').qop, "auth"
        )

    def test_unusable(self) -> None:
        """
        Basic, auth-int only, MD5-sess, or missing realm/nonce are refused.
        """
        for value in (
            'Basic realm="r"',
            'Digest realm="r", nonce="n", qop="auth-int"',
            'Digest realm="r", nonce="n", qop="auth", algorithm=MD5-sess',
            'Digest nonce="n", qop="auth"',
            'Digest realm="r", qop="auth"',
        ):
            with self.subTest(value=value):
                self.assertRaises(RelayChallengeError, self.parse, value)

    def test_stale(self) -> None:
        """
        stale=true (any case) is recognised.
        """
        self.assertTrue(self.parse('Digest realm="r", nonce="n", stale=TRUE').stale)
        self.assertFalse(self.parse('Digest realm="r", nonce="n", stale=false').stale)


class RFCExampleTests(SynchronousTestCase):
    """
    The AUTH flows of RFC 4976 section 5.1, from the fixtures.
    """

    def test_firstRequest(self) -> None:
        """
        The first AUTH is the RFC's 49fh byte for byte (but for the
        transaction id): To-Path the relay, From-Path our URI, no body, no
        Authorization.
        """
        authenticator = RelayAuthenticator(INTRA, ALICE, "Alice", "secret")
        request = authenticator.firstRequest()
        self.assertEqual(request.method, "AUTH")
        self.assertIsNone(request.body)
        self.assertEqual(authenticator.pendingTransactionID, request.transactionID)
        self.assertEqual(
            request.serialize().replace(request.transactionID.encode(), b"49fh"),
            fixture("rfc4976-5.1-auth-49fh.msrp"),
        )

    def test_answerChallenge(self) -> None:
        """
        The RFC's 401 is answered with an AUTH like 49fi: same paths and
        digest parameters (username, realm, nonce, qop=auth, nc=00000001,
        cnonce), plus the uri (the relay URI, RFC 4976 section 9.1) and a
        response computed for method AUTH (the RFC's printed one is RFC
        2617's, for GET).
        """
        authenticator = RelayAuthenticator(
            INTRA, ALICE, "Alice", "secret", cnonceFactory=lambda: "0a4f113b"
        )
        first = authenticator.firstRequest()
        second = authenticator.responseReceived(
            fixtureResponse("rfc4976-5.1-401-49fh.msrp", first.transactionID)
        )
        assert isinstance(second, MSRPRequest)
        self.assertNotEqual(second.transactionID, first.transactionID)
        rfc = parseMessage(fixture("rfc4976-5.1-auth-49fi.msrp"))
        assert isinstance(rfc, MSRPRequest)
        self.assertEqual(
            (second.method, second.toPath, second.fromPath),
            (rfc.method, rfc.toPath, rfc.fromPath),
        )
        ours = credentials(second)
        theirs = credentials(rfc)
        self.assertEqual(ours.scheme, "Digest")
        for name in ("username", "realm", "nonce", "qop", "nc", "cnonce"):
            self.assertEqual(ours.get(name), theirs.get(name), name)
        self.assertEqual(ours.get("uri"), "msrps://alice@intra.example.com;tcp")
        self.assertIsNone(ours.get("algorithm"))
        ha1 = md5("Alice:intra.example.com:secret")
        ha2 = md5("AUTH:msrps://alice@intra.example.com;tcp")
        self.assertEqual(
            ours.get("response"),
            md5(
                f"{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}"
            ),
        )
        # RFC 4976 section 7: qop unquoted in Authorization, quoted values.
        value = second.header("Authorization")
        assert value is not None
        self.assertIn(" qop=auth", value)
        self.assertIn(' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"', value)
        self.assertIn(", nc=00000001", value)

    def test_authorized(self) -> None:
        """
        The RFC's 200 gives the Use-Path, Expires 900 and the nextnonce.
        (Without credentials sent, rspauth is not checked.)
        """
        authenticator = RelayAuthenticator(INTRA, ALICE)
        request = authenticator.firstRequest()
        outcome = authenticator.responseReceived(
            fixtureResponse("rfc4976-5.1-200ok-49fi.msrp", request.transactionID)
        )
        assert isinstance(outcome, RelayAuthorized)
        self.assertEqual(outcome.usePath, (INTRA_USE,))
        self.assertEqual(outcome.expires, 900)
        self.assertEqual(outcome.nextNonce, "40f2e879449675f288476d772627370a")
        self.assertEqual(outcome.ownURI, ALICE)
        self.assertEqual(outcome.sdpPath, (INTRA_USE, ALICE))
        self.assertIsNone(authenticator.pendingTransactionID)

    def test_printedRspauthRejected(self) -> None:
        """
        After answering the RFC's challenge, the RFC's 200 fails the
        rspauth check: its rspauth (like its response) is not computed from
        the example's values, and a wrong rspauth means the relay did not
        prove it knows our password.
        """
        authenticator = RelayAuthenticator(
            INTRA, ALICE, "Alice", "secret", cnonceFactory=lambda: "0a4f113b"
        )
        first = authenticator.firstRequest()
        second = authenticator.responseReceived(
            fixtureResponse("rfc4976-5.1-401-49fh.msrp", first.transactionID)
        )
        assert isinstance(second, MSRPRequest)
        error = self.assertRaises(
            RelayMutualAuthFailed,
            authenticator.responseReceived,
            fixtureResponse("rfc4976-5.1-200ok-49fi.msrp", second.transactionID),
        )
        self.assertEqual(error.code, 200)

    def test_tunnelledAuth(self) -> None:
        """
        The second relay is AUTHed through the first: To-Path = the first
        relay's Use-Path + the outer relay (mnbvw); the digest URI is the
        rightmost To-Path URI, the outer relay's (RFC 4976 section 9.1);
        the answer has m3nbvx's paths.
        """
        authenticator = RelayAuthenticator(
            EXTRA,
            ALICE,
            "Alice",
            "secret",
            via=(INTRA_USE,),
            cnonceFactory=lambda: "85a0dca8",
        )
        first = authenticator.firstRequest()
        self.assertEqual(
            first.serialize().replace(first.transactionID.encode(), b"mnbvw"),
            fixture("rfc4976-5.1-auth-mnbvw.msrp"),
        )
        second = authenticator.responseReceived(
            fixtureResponse("rfc4976-5.1-401-mnbvw.msrp", first.transactionID)
        )
        assert isinstance(second, MSRPRequest)
        rfc = parseMessage(fixture("rfc4976-5.1-auth-m3nbvx.msrp"))
        assert isinstance(rfc, MSRPRequest)
        self.assertEqual((second.toPath, second.fromPath), (rfc.toPath, rfc.fromPath))
        ours = credentials(second)
        self.assertEqual(ours.get("uri"), "msrps://extra.example.com;tcp")
        self.assertEqual(ours.get("realm"), "extra.example.com")
        ha1 = md5("Alice:extra.example.com:secret")
        ha2 = md5("AUTH:msrps://extra.example.com;tcp")
        self.assertEqual(
            ours.get("response"),
            md5(f"{ha1}:Uumu8cAV38FGsEF31VLevIbNXj9HWO:00000001:85a0dca8:auth:{ha2}"),
        )

    def test_tunnelledUsePath(self) -> None:
        """
        The outer relay's Use-Path (m4nbvx) lists both relays in To-Path
        order; the SDP path is it reversed plus our URI (RFC 4976 section
        5.1).
        """
        authenticator = RelayAuthenticator(EXTRA, ALICE, via=(INTRA_USE,))
        request = authenticator.firstRequest()
        outcome = authenticator.responseReceived(
            fixtureResponse("rfc4976-5.1-200ok-m4nbvx.msrp", request.transactionID)
        )
        assert isinstance(outcome, RelayAuthorized)
        self.assertEqual(outcome.usePath, (INTRA_USE, EXTRA_USE))
        self.assertEqual(outcome.expires, 1800)
        self.assertEqual(outcome.sdpPath, (EXTRA_USE, INTRA_USE, ALICE))


class PathTests(SynchronousTestCase):
    """
    RFC 4976 section 5.1: To-Path and SDP path through relays.
    """

    def test_sectionFiveOneExample(self) -> None:
        """
        A's relays B C, F's relays D E: Use-Path "B C", A's path "C B A",
        F's path "D E F", A's To-Path "B C D E F".
        """
        b, c, d, e, f, a = (
            MSRPURI("msrp", f"{name}.example.com", 2855, name)
            for name in ("b", "c", "d", "e", "f", "a")
        )
        self.assertEqual(sdpPathThroughRelays((b, c), a), (c, b, a))
        self.assertEqual(toPathThroughRelays((b, c), (d, e, f)), (b, c, d, e, f))
        authorized = RelayAuthorized((b, c), a, None, None, None)  # type: ignore[arg-type]
        self.assertEqual(authorized.sdpPath, (c, b, a))
        self.assertEqual(authorized.toPath((d, e, f)), (b, c, d, e, f))

    def test_noRelays(self) -> None:
        """
        Without relays the To-Path is the peer's path (RFC 4975).
        """
        self.assertEqual(toPathThroughRelays((), (OWN,)), (OWN,))
        self.assertEqual(sdpPathThroughRelays((), OWN), (OWN,))

    def test_emptyPeerPath(self) -> None:
        """
        A peer path is never empty.
        """
        self.assertRaises(ValueError, toPathThroughRelays, (USE,), ())


class ExchangeTests(SynchronousTestCase):
    """
    L{RelayAuthenticator} against scripted relay responses: every outcome
    of RFC 4976 sections 5.1, 6.3 and 9.1.
    """

    def authenticator(self, **kwargs: object) -> RelayAuthenticator:
        """
        An authenticator for alice/secret with cnonce C{c0ffee}.
        """
        defaults: dict[str, object] = {
            "username": "alice",
            "password": "secret",
            "cnonceFactory": lambda: "c0ffee",
        }
        defaults.update(kwargs)
        return RelayAuthenticator(RELAY, OWN, **defaults)  # type: ignore[arg-type]

    def challenged(
        self, authenticator: RelayAuthenticator, *challenges: str
    ) -> MSRPRequest:
        """
        Start an exchange and answer its first AUTH with a 401.
        """
        first = authenticator.firstRequest()
        self.assertIsNone(first.authorization)
        second = authenticator.responseReceived(
            respond(
                first,
                401,
                "Unauthorized",
                [("WWW-Authenticate", c) for c in challenges],
            )
        )
        assert isinstance(second, MSRPRequest)
        return second

    def test_success(self) -> None:
        """
        401, AUTH with MD5 credentials, 200 with Use-Path and Expires.
        """
        authenticator = self.authenticator()
        second = self.challenged(authenticator, CHALLENGE)
        creds = credentials(second)
        self.assertEqual(creds.get("algorithm"), "MD5")
        self.assertEqual(creds.get("uri"), "msrp://relay.example.com:2855;tcp")
        ha1 = md5("alice:relay.example.com:secret")
        ha2 = md5("AUTH:msrp://relay.example.com:2855;tcp")
        self.assertEqual(
            creds.get("response"), md5(f"{ha1}:n0nce:00000001:c0ffee:auth:{ha2}")
        )
        outcome = authenticator.responseReceived(
            respond(
                second, 200, "OK", [("Use-Path", USE.serialize()), ("Expires", "600")]
            )
        )
        assert isinstance(outcome, RelayAuthorized)
        self.assertEqual(outcome.usePath, (USE,))
        self.assertEqual(outcome.expires, 600)
        self.assertEqual(outcome.sdpPath, (USE, OWN))
        self.assertEqual(outcome.toPath((OWN,)), (USE, OWN))

    def test_sha256Preferred(self) -> None:
        """
        Offered SHA-256 and MD5, the client answers SHA-256 (RFC 7616 3.7)
        with a 64-digit response.
        """
        second = self.challenged(
            self.authenticator(),
            CHALLENGE,
            'Digest realm="relay.example.com", nonce="n2", qop="auth", algorithm=SHA-256',
        )
        creds = credentials(second)
        self.assertEqual(creds.get("algorithm"), "SHA-256")
        ha1 = sha256("alice:relay.example.com:secret")
        ha2 = sha256("AUTH:msrp://relay.example.com:2855;tcp")
        self.assertEqual(
            creds.get("response"), sha256(f"{ha1}:n2:00000001:c0ffee:auth:{ha2}")
        )

    def test_challengeWithoutQop(self) -> None:
        """
        A challenge without qop (Kamailio's default) is answered without
        qop, nc and cnonce; opaque is echoed.
        """
        second = self.challenged(
            self.authenticator(), 'Digest realm="r", nonce="n", opaque="op\\"q"'
        )
        creds = credentials(second)
        self.assertIsNone(creds.get("qop"))
        self.assertIsNone(creds.get("nc"))
        self.assertIsNone(creds.get("cnonce"))
        self.assertIsNone(creds.get("algorithm"))
        self.assertEqual(creds.get("opaque"), 'op"q')
        ha1 = md5("alice:r:secret")
        ha2 = md5("AUTH:msrp://relay.example.com:2855;tcp")
        self.assertEqual(creds.get("response"), md5(f"{ha1}:n:{ha2}"))

    def test_quotedUsername(self) -> None:
        """
        Quotes and backslashes in the user name are escaped.
        """
        second = self.challenged(self.authenticator(username='a"b\\c'), CHALLENGE)
        self.assertEqual(credentials(second).get("username"), 'a"b\\c')

    def test_expiresRequested(self) -> None:
        """
        RFC 4976 section 5.1: an Expires header asks for a lifetime, in
        every AUTH of the exchange.
        """
        authenticator = self.authenticator(expires=300)
        first = authenticator.firstRequest()
        self.assertEqual(first.header("Expires"), "300")
        second = authenticator.responseReceived(
            respond(first, 401, "Unauthorized", [("WWW-Authenticate", CHALLENGE)])
        )
        assert isinstance(second, MSRPRequest)
        self.assertEqual(second.header("Expires"), "300")

    def test_noChallenge(self) -> None:
        """
        A relay that accepts AUTH without authentication: 200 at once.
        """
        authenticator = RelayAuthenticator(RELAY, OWN)
        first = authenticator.firstRequest()
        outcome = authenticator.responseReceived(
            respond(first, 200, "OK", [("Use-Path", USE.serialize())])
        )
        assert isinstance(outcome, RelayAuthorized)
        self.assertIsNone(outcome.expires)
        self.assertIsNone(outcome.refreshDelay())

    def test_credentialsRequired(self) -> None:
        """
        401 without configured credentials: L{RelayCredentialsRequired}.
        """
        authenticator = RelayAuthenticator(RELAY, OWN)
        first = authenticator.firstRequest()
        error = self.assertRaises(
            RelayCredentialsRequired,
            authenticator.responseReceived,
            respond(first, 401, "Unauthorized", [("WWW-Authenticate", CHALLENGE)]),
        )
        self.assertEqual(error.code, 401)
        self.assertIn("relay_username", str(error))

    def test_credentialsRejected(self) -> None:
        """
        RFC 4976 section 6.3: a 401 (not stale) to an AUTH with credentials
        means they were refused.
        """
        authenticator = self.authenticator()
        second = self.challenged(authenticator, CHALLENGE)
        self.assertRaises(
            RelayCredentialsRejected,
            authenticator.responseReceived,
            respond(second, 401, "Unauthorized", [("WWW-Authenticate", CHALLENGE)]),
        )
        self.assertIsNone(authenticator.pendingTransactionID)

    def test_staleRetried(self) -> None:
        """
        stale=true: answered again with the new nonce and nc restarting at
        1; endless stale challenges end after L{DEFAULT_MAX_CHALLENGES}.
        """
        authenticator = self.authenticator()
        request = self.challenged(authenticator, CHALLENGE)
        for round in range(DEFAULT_MAX_CHALLENGES - 1):
            stale = f'Digest realm="relay.example.com", nonce="fresh{round}", qop="auth", stale=true'
            following = authenticator.responseReceived(
                respond(request, 401, "Unauthorized", [("WWW-Authenticate", stale)])
            )
            assert isinstance(following, MSRPRequest)
            self.assertEqual(credentials(following).get("nonce"), f"fresh{round}")
            self.assertEqual(credentials(following).get("nc"), "00000001")
            request = following
        self.assertRaises(
            RelayCredentialsRejected,
            authenticator.responseReceived,
            respond(request, 401, "Unauthorized", [("WWW-Authenticate", stale)]),
        )

    def test_unusableChallenge(self) -> None:
        """
        A 401 with only Basic, with a malformed header, or with none:
        L{RelayChallengeError}.
        """
        for headers in (
            [("WWW-Authenticate", 'Basic realm="r"')],
            [("WWW-Authenticate", "Digest realm=")],
            [],
        ):
            with self.subTest(headers=headers):
                authenticator = self.authenticator()
                first = authenticator.firstRequest()
                self.assertRaises(
                    RelayChallengeError,
                    authenticator.responseReceived,
                    respond(first, 401, "Unauthorized", headers),
                )

    def test_forbidden(self) -> None:
        """
        RFC 4976 section 6.3: 403, not authorized: L{RelayForbidden}.
        """
        authenticator = self.authenticator()
        second = self.challenged(authenticator, CHALLENGE)
        error = self.assertRaises(
            RelayForbidden,
            authenticator.responseReceived,
            respond(second, 403, "Forbidden", []),
        )
        self.assertEqual(error.code, 403)

    def test_minExpires(self) -> None:
        """
        RFC 4976 sections 4.6, 6.3: 423 with Min-Expires.
        """
        authenticator = self.authenticator(expires=10)
        first = authenticator.firstRequest()
        error = self.assertRaises(
            RelayIntervalOutOfBounds,
            authenticator.responseReceived,
            respond(first, 423, "Interval Out-of-Bounds", [("Min-Expires", "60")]),
        )
        self.assertEqual(
            (error.code, error.minExpires, error.maxExpires), (423, 60, None)
        )

    def test_maxExpires(self) -> None:
        """
        423 with Max-Expires.
        """
        authenticator = self.authenticator(expires=99999)
        first = authenticator.firstRequest()
        error = self.assertRaises(
            RelayIntervalOutOfBounds,
            authenticator.responseReceived,
            respond(first, 423, "Interval Out-of-Bounds", [("Max-Expires", "3600")]),
        )
        self.assertEqual((error.minExpires, error.maxExpires), (None, 3600))

    def test_malformedMinExpires(self) -> None:
        """
        A 423 with a non-numeric Min-Expires: L{RelayProtocolError}.
        """
        authenticator = self.authenticator(expires=10)
        first = authenticator.firstRequest()
        self.assertRaises(
            RelayProtocolError,
            authenticator.responseReceived,
            respond(first, 423, "Interval Out-of-Bounds", [("Min-Expires", "soon")]),
        )

    def test_otherFailure(self) -> None:
        """
        Any other failure (here 500 and 481): L{RelayRejected}.
        """
        for code in (500, 481, 400):
            with self.subTest(code=code):
                authenticator = self.authenticator()
                first = authenticator.firstRequest()
                error = self.assertRaises(
                    RelayRejected,
                    authenticator.responseReceived,
                    respond(first, code, "No", []),
                )
                self.assertEqual(error.code, code)

    def test_distinctOutcomes(self) -> None:
        """
        Each failure is its own L{RelayAuthError} subclass.
        """
        classes = {
            RelayCredentialsRequired,
            RelayCredentialsRejected,
            RelayChallengeError,
            RelayForbidden,
            RelayIntervalOutOfBounds,
            RelayRejected,
            RelayProtocolError,
            RelayMutualAuthFailed,
        }
        for cls in classes:
            self.assertTrue(issubclass(cls, RelayAuthError))
            self.assertEqual(
                [other for other in classes if issubclass(cls, other)], [cls]
            )

    def test_badSuccess(self) -> None:
        """
        A 200 without Use-Path, with a portless or malformed Use-Path, or a
        malformed Expires: L{RelayProtocolError}.
        """
        for headers in (
            [],
            [("Use-Path", "msrp://relay.example.com/x;tcp")],
            [("Use-Path", "http://nope")],
            [("Use-Path", USE.serialize()), ("Expires", "-1")],
        ):
            with self.subTest(headers=headers):
                authenticator = self.authenticator()
                first = authenticator.firstRequest()
                self.assertRaises(
                    RelayProtocolError,
                    authenticator.responseReceived,
                    respond(first, 200, "OK", headers),
                )

    def test_wrongTransaction(self) -> None:
        """
        A response to another transaction is L{RelayProtocolError} and
        leaves the AUTH pending; with nothing pending any response is.
        """
        authenticator = self.authenticator()
        first = authenticator.firstRequest()
        other = buildResponse(
            "othertid1", 200, "OK", (OWN,), (RELAY,), [("Use-Path", USE.serialize())]
        )
        self.assertRaises(RelayProtocolError, authenticator.responseReceived, other)
        self.assertEqual(authenticator.pendingTransactionID, first.transactionID)
        success = respond(first, 200, "OK", [("Use-Path", USE.serialize())])
        self.assertIsInstance(authenticator.responseReceived(success), RelayAuthorized)
        self.assertIsNone(authenticator.pendingTransactionID)
        self.assertRaises(RelayProtocolError, authenticator.responseReceived, success)

    def test_mutualAuth(self) -> None:
        """
        A correct rspauth (RFC 2617 3.2.3) is accepted, a wrong one is
        L{RelayMutualAuthFailed}; the nextnonce is kept.
        """
        ha1 = md5("alice:relay.example.com:secret")
        ha2 = md5(":msrp://relay.example.com:2855;tcp")
        good = md5(f"{ha1}:n0nce:00000001:c0ffee:auth:{ha2}")
        for rspauth, ok in ((good, True), ("0" * 32, False)):
            with self.subTest(ok=ok):
                authenticator = self.authenticator()
                second = self.challenged(authenticator, CHALLENGE)
                info = f'nextnonce="nn", rspauth="{rspauth}", cnonce="c0ffee", nc=00000001, qop=auth'
                response = respond(
                    second,
                    200,
                    "OK",
                    [("Use-Path", USE.serialize()), ("Authentication-Info", info)],
                )
                if ok:
                    outcome = authenticator.responseReceived(response)
                    assert isinstance(outcome, RelayAuthorized)
                    self.assertEqual(outcome.nextNonce, "nn")
                else:
                    self.assertRaises(
                        RelayMutualAuthFailed, authenticator.responseReceived, response
                    )

    def test_refreshWithNextNonce(self) -> None:
        """
        RFC 4976 section 9.1: the next AUTH answers the nextnonce at once;
        if the relay challenges it anyway, the new challenge is answered.
        """
        authenticator = self.authenticator()
        second = self.challenged(authenticator, CHALLENGE)
        authenticator.responseReceived(
            respond(
                second,
                200,
                "OK",
                [
                    ("Use-Path", USE.serialize()),
                    ("Authentication-Info", 'nextnonce="nn", qop=auth'),
                ],
            )
        )
        refresh = authenticator.firstRequest()
        creds = credentials(refresh)
        self.assertEqual(creds.get("nonce"), "nn")
        self.assertEqual(creds.get("nc"), "00000001")
        again = authenticator.responseReceived(
            respond(refresh, 401, "Unauthorized", [("WWW-Authenticate", CHALLENGE)])
        )
        assert isinstance(again, MSRPRequest)
        self.assertEqual(credentials(again).get("nonce"), "n0nce")

    def test_refreshDelay(self) -> None:
        """
        Re-AUTH 30 s before expiry, but not before half the lifetime.
        """

        def delay(expires: int) -> float | None:
            return RelayAuthorized((USE,), OWN, expires, None, None).refreshDelay()  # type: ignore[arg-type]

        self.assertEqual(delay(3600), 3570.0)
        self.assertEqual(delay(60), 30.0)
        self.assertEqual(delay(10), 5.0)

    def test_restartAbandons(self) -> None:
        """
        L{RelayAuthenticator.firstRequest} during an exchange starts over.
        """
        authenticator = self.authenticator()
        first = authenticator.firstRequest()
        again = authenticator.firstRequest()
        self.assertEqual(authenticator.pendingTransactionID, again.transactionID)
        self.assertRaises(
            RelayProtocolError,
            authenticator.responseReceived,
            respond(first, 200, "OK", []),
        )

    def test_arguments(self) -> None:
        """
        Username and password go together; expires is not negative; the
        password never appears in the repr.
        """
        self.assertRaises(ValueError, RelayAuthenticator, RELAY, OWN, "alice", None)
        self.assertRaises(ValueError, RelayAuthenticator, RELAY, OWN, None, "secret")
        self.assertRaises(ValueError, RelayAuthenticator, RELAY, OWN, expires=-1)
        self.assertNotIn("secret", repr(self.authenticator()))


def _fuzzResponse(tid: str, code: int, *lines: str) -> MSRPResponse:
    """
    A response of the relay, as bytes parsed.
    """
    data = (
        f"MSRP {tid} {code} X\r\nTo-Path: {ALICE}\r\nFrom-Path: {INTRA_USE}\r\n"
        + "".join(line + "\r\n" for line in lines)
        + f"-------{tid}$\r\n"
    ).encode()
    message = parseMessage(data)
    assert isinstance(message, MSRPResponse)
    return message


class FuzzFoundTests(SynchronousTestCase):
    """
    Bugs found by fuzz/fuzz_msrp_relay.py and by reading.
    """

    def test_expiresTooLong(self) -> None:
        """
        An Expires of 5000 digits: the typed accessor raises MSRPParseError
        (400) as documented, not ValueError (int() refuses > 4300 digits).
        """
        message = _fuzzResponse("abcd", 200, "Expires: " + "9" * 5000)
        self.assertRaises(MSRPParseError, lambda: message.expires)

    def test_relayNumbersTooLong(self) -> None:
        """
        A relay's 200 with a 5000-digit Expires, or 423 with such a
        Min-Expires: RelayProtocolError/RelayIntervalOutOfBounds, never
        ValueError.
        """
        for code, name in [(200, "Expires"), (423, "Min-Expires")]:
            authenticator = RelayAuthenticator(INTRA, ALICE, expires=900)
            request = authenticator.firstRequest()
            message = _fuzzResponse(request.transactionID, code, f"Use-Path: {INTRA_USE}",
                               f"{name}: " + "9" * 5000)
            self.assertRaises(RelayAuthError, authenticator.responseReceived, message)

    def test_challengeWithTab(self) -> None:
        """
        A Digest challenge whose nonce holds a tab (legal in a
        quoted-string): answered, or refused with RelayChallengeError, never
        ValueError.  Found by fuzz/fuzz_msrp_relay.py.
        """
        authenticator = RelayAuthenticator(INTRA, ALICE, "Alice", "secret",
                                           cnonceFactory=lambda: "0a4f113b")
        request = authenticator.firstRequest()
        challenge = _fuzzResponse(request.transactionID, 401,
                             'WWW-Authenticate: Digest realm="intra.example.com",'
                             ' nonce="abc\tdef", qop="auth"')
        try:
            authenticator.responseReceived(challenge)
        except RelayChallengeError:
            pass

    def test_rspauthNonASCII(self) -> None:
        """
        A relay's 200 whose rspauth holds a non-ASCII character: refused
        with RelayMutualAuthFailed (it cannot match), never TypeError from
        secrets.compare_digest.  Found by fuzz/fuzz_msrp_relay.py.
        """
        from stoxgw.msrp.relay import RelayMutualAuthFailed
        
        authenticator = RelayAuthenticator(INTRA, ALICE, "Alice", "secret",
                                           cnonceFactory=lambda: "0a4f113b")
        first = authenticator.firstRequest()
        second = authenticator.responseReceived(
            fixtureResponse("rfc4976-5.1-401-49fh.msrp", first.transactionID)
        )
        ok = _fuzzResponse(second.transactionID, 200, f"Use-Path: {INTRA_USE}",
                      'Authentication-Info: rspauth="\u00e972f10d2755d7ed0d0a213ec653b3f2",'
                      ' cnonce="0a4f113b", nc=00000001, qop=auth')
        self.assertRaises(RelayMutualAuthFailed, authenticator.responseReceived, ok)
