# -*- test-case-name: tests.interop.test_msrp_relay_kamailio -*-
"""
Interop: L{stoxgw.msrp.relayauth.RelayAuthenticator} and plain MSRP through a
real Kamailio MSRP relay (RFC 4976; SPEC R-168).

Blocking sockets on 127.0.0.1 with a timeout on every read; the relay is
started per test and stopped by PID.  Messages received are parsed with
L{stoxgw.msrp.parser.MSRPParser}.
"""

from __future__ import annotations

import socket
import time

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.msrp.builders import buildRequest
from stoxgw.msrp.message import MSRPMethod, MSRPParseError, MSRPRequest, MSRPResponse
from stoxgw.msrp.parser import MSRPParser
from stoxgw.msrp.relay import (
    RelayAuthorized,
    RelayCredentialsRejected,
    RelayCredentialsRequired,
    RelayForbidden,
    RelayIntervalOutOfBounds,
)
from stoxgw.msrp.relayauth import RelayAuthenticator
from stoxgw.msrp.reports import reportFor, responseTo
from stoxgw.msrp.uri import MSRPURI
from tests.interop.kamailio import KamailioMSRPRelay

#: Seconds any single wait for a message may take.
TIMEOUT = 5.0
#: Seconds to watch for a message that must not come.
QUIET = 0.5


class Client:
    """
    One MSRP endpoint with a blocking TCP connection to the relay.

    @ivar ownURI: C{msrp://127.0.0.1:LOCALPORT/NAME;tcp}.
    """

    def __init__(self, relay: KamailioMSRPRelay, name: str) -> None:
        self.relay = relay
        self.socket = socket.create_connection(
            ("127.0.0.1", relay.msrpPort), timeout=TIMEOUT
        )
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = MSRPParser()
        self.received: list[MSRPRequest | MSRPResponse] = []
        self.ownURI = MSRPURI("msrp", "127.0.0.1", self.socket.getsockname()[1], name)

    def close(self) -> None:
        """
        Close the connection.
        """
        self.socket.close()

    def send(self, message: MSRPRequest | MSRPResponse) -> None:
        """
        Send one message.
        """
        self.socket.sendall(message.serialize())

    def receive(self, timeout: float = TIMEOUT) -> MSRPRequest | MSRPResponse | None:
        """
        The next message, or L{None} if none comes within C{timeout}.

        @raise AssertionError: For bytes the parser rejects, or a closed
            connection.
        """
        deadline = time.monotonic() + timeout
        while not self.received:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.socket.settimeout(remaining)
            try:
                data = self.socket.recv(65536)
            except socket.timeout:
                return None
            if not data:
                raise AssertionError("the relay closed the connection")
            for event in self.parser.feed(data):
                if isinstance(event, MSRPParseError):
                    raise AssertionError(f"unparseable MSRP from the relay: {event!r}")
                self.received.append(event)
        return self.received.pop(0)

    def expect(
        self, kind: type[MSRPRequest] | type[MSRPResponse]
    ) -> MSRPRequest | MSRPResponse:
        """
        @return: The next message, which must be of C{kind}.
        @raise AssertionError: If none comes within L{TIMEOUT}.
        """
        message = self.receive()
        if message is None:
            raise AssertionError(f"no {kind.__name__} within {TIMEOUT} s")
        if not isinstance(message, kind):
            raise AssertionError(f"expected a {kind.__name__}, got {message!r}")
        return message

    def expectResponse(self) -> MSRPResponse:
        """
        @return: The next message, which must be a response.
        """
        message = self.expect(MSRPResponse)
        assert isinstance(message, MSRPResponse)
        return message

    def expectRequest(self) -> MSRPRequest:
        """
        @return: The next message, which must be a request.
        """
        message = self.expect(MSRPRequest)
        assert isinstance(message, MSRPRequest)
        return message

    def authenticate(
        self, authenticator: RelayAuthenticator
    ) -> tuple[RelayAuthorized, list[MSRPResponse]]:
        """
        Drive an AUTH exchange to its end (at most 4 round trips).

        @return: The outcome and the responses seen.
        @raise RelayAuthError: As the authenticator raises.
        """
        responses: list[MSRPResponse] = []
        request = authenticator.firstRequest()
        for _ in range(4):
            self.send(request)
            response = self.expectResponse()
            responses.append(response)
            outcome = authenticator.responseReceived(response)
            if isinstance(outcome, RelayAuthorized):
                return outcome, responses
            request = outcome
        raise AssertionError(f"AUTH did not end: {responses!r}")


class KamailioRelayTests(SynchronousTestCase):
    """
    The RFC 4976 client against Kamailio 5.6.3's C{msrp} module configured
    by L{KamailioMSRPRelay}.
    """

    def startRelay(self, **kwargs: object) -> KamailioMSRPRelay:
        """
        Start a relay for this test and stop it (by PID) afterwards.

        @raise PeerUnavailable: If Kamailio is not installed (C{make test}
            installs it, as for the other peers).
        """
        relay = KamailioMSRPRelay(directory=self.mktemp(), **kwargs)  # type: ignore[arg-type]
        relay.start()
        self.addCleanup(relay.stop)
        return relay

    def client(self, relay: KamailioMSRPRelay, name: str) -> Client:
        """
        Connect a client named C{name} to C{relay} for this test.
        """
        client = Client(relay, name)
        self.addCleanup(client.close)
        return client

    def authenticator(
        self,
        relay: KamailioMSRPRelay,
        client: Client,
        username: str | None,
        password: str | None,
        **kwargs: object,
    ) -> RelayAuthenticator:
        """
        An authenticator for C{client} towards C{relay}'s URI.
        """
        return RelayAuthenticator(
            MSRPURI.fromString(relay.relayURI), client.ownURI, username, password, **kwargs  # type: ignore[arg-type]
        )

    def assertAuthorized(
        self, relay: KamailioMSRPRelay, outcome: RelayAuthorized, expires: int
    ) -> None:
        """
        Kamailio's Use-Path: one URI, the relay's address with a session id.
        """
        self.assertEqual(len(outcome.usePath), 1)
        uri = outcome.usePath[0]
        self.assertEqual(
            (uri.scheme, uri.host, uri.port, uri.transport),
            ("msrp", "127.0.0.1", relay.msrpPort, "tcp"),
        )
        self.assertIsNotNone(uri.sessionID)
        self.assertEqual(outcome.expires, expires)

    def test_digestAuthMD5(self) -> None:
        """
        RFC 4976 sections 5.1, 9.1: AUTH is challenged (Digest, qop auth,
        MD5), the answer computed by L{RelayAuthenticator} is accepted, and
        the 200 carries Use-Path and Expires.
        """
        relay = self.startRelay()
        alice = self.client(relay, "alice")
        outcome, responses = alice.authenticate(
            self.authenticator(relay, alice, "alice", "alicepass")
        )
        self.assertEqual([r.code for r in responses], [401, 200])
        challenge = responses[0].wwwAuthenticate[0]
        self.assertEqual(challenge.scheme, "Digest")
        self.assertEqual(challenge.get("realm"), relay.realm)
        self.assertEqual(challenge.get("qop"), "auth")
        self.assertEqual(challenge.get("algorithm"), "MD5")
        self.assertAuthorized(relay, outcome, 3600)
        self.assertEqual(outcome.sdpPath, (outcome.usePath[0], alice.ownURI))

    def test_digestAuthSHA256(self) -> None:
        """
        Kamailio's C{algorithm=SHA-256} challenge (RFC 7616) is answered.
        """
        relay = self.startRelay(algorithm="SHA-256")
        alice = self.client(relay, "alice")
        outcome, responses = alice.authenticate(
            self.authenticator(relay, alice, "alice", "alicepass")
        )
        self.assertEqual(responses[0].wwwAuthenticate[0].get("algorithm"), "SHA-256")
        self.assertAuthorized(relay, outcome, 3600)

    def test_wrongPassword(self) -> None:
        """
        RFC 4976 section 6.3: a wrong password gets 403 (as configured).
        """
        relay = self.startRelay()
        alice = self.client(relay, "alice")
        error = self.assertRaises(
            RelayForbidden,
            alice.authenticate,
            self.authenticator(relay, alice, "alice", "wrong"),
        )
        self.assertEqual(error.code, 403)

    def test_unknownUser(self) -> None:
        """
        An unknown user is challenged again: credentials rejected.
        """
        relay = self.startRelay()
        alice = self.client(relay, "alice")
        error = self.assertRaises(
            RelayCredentialsRejected,
            alice.authenticate,
            self.authenticator(relay, alice, "mallory", "x"),
        )
        self.assertEqual(error.code, 401)

    def test_noCredentials(self) -> None:
        """
        Without configured credentials the challenge ends the exchange.
        """
        relay = self.startRelay()
        alice = self.client(relay, "alice")
        self.assertRaises(
            RelayCredentialsRequired,
            alice.authenticate,
            self.authenticator(relay, alice, None, None),
        )

    def test_unauthenticatedRelay(self) -> None:
        """
        A relay configured without users answers the first AUTH with 200.
        """
        relay = self.startRelay(users={})
        alice = self.client(relay, "alice")
        outcome, responses = alice.authenticate(
            self.authenticator(relay, alice, None, None)
        )
        self.assertEqual([r.code for r in responses], [200])
        self.assertAuthorized(relay, outcome, 3600)

    def test_expiresBounds(self) -> None:
        """
        RFC 4976 sections 4.6, 6.3: Expires below Min-Expires or above
        Max-Expires gets 423 with the bound; within them, the 200 echoes it.
        """
        relay = self.startRelay(minExpires=60, maxExpires=1800)
        alice = self.client(relay, "alice")
        low = self.assertRaises(
            RelayIntervalOutOfBounds,
            alice.authenticate,
            self.authenticator(relay, alice, "alice", "alicepass", expires=10),
        )
        self.assertEqual((low.code, low.minExpires, low.maxExpires), (423, 60, None))
        high = self.assertRaises(
            RelayIntervalOutOfBounds,
            alice.authenticate,
            self.authenticator(relay, alice, "alice", "alicepass", expires=7200),
        )
        self.assertEqual((high.minExpires, high.maxExpires), (None, 1800))
        outcome, _ = alice.authenticate(
            self.authenticator(relay, alice, "alice", "alicepass", expires=120)
        )
        self.assertAuthorized(relay, outcome, 120)
        self.assertEqual(outcome.refreshDelay(), 90.0)

    def test_sendAndReportThroughRelay(self) -> None:
        """
        Alice and Bob each AUTH; Alice's SEND (To-Path = her Use-Path +
        Bob's SDP path, RFC 4976 section 5.1) is answered 200 by the relay
        (hop by hop) and reaches Bob with the relay URIs in front of the
        From-Path; Bob's 200 ends at the relay; Bob's REPORT (To-Path = the
        SEND's From-Path) reaches Alice through the relay.
        """
        relay = self.startRelay()
        alice = self.client(relay, "alice")
        bob = self.client(relay, "bob")
        alicesRelay, _ = alice.authenticate(
            self.authenticator(relay, alice, "alice", "alicepass")
        )
        bobsRelay, _ = bob.authenticate(
            self.authenticator(relay, bob, "bob", "bobpass")
        )
        self.assertNotEqual(alicesRelay.usePath, bobsRelay.usePath)

        toPath = alicesRelay.toPath(bobsRelay.sdpPath)
        self.assertEqual(
            toPath, alicesRelay.usePath + bobsRelay.usePath + (bob.ownURI,)
        )
        send = buildRequest(
            MSRPMethod.SEND,
            toPath,
            (alice.ownURI,),
            [
                ("Message-ID", "relaymsg0001"),
                ("Byte-Range", "1-13/13"),
                ("Success-Report", "yes"),
            ],
            b"Hello, Bob!\r\n",
            "text/plain",
        )
        alice.send(send)

        hop = alice.expectResponse()
        self.assertEqual(hop.transactionID, send.transactionID)
        self.assertEqual(hop.code, 200)
        self.assertEqual(hop.toPath, (alice.ownURI,))
        self.assertEqual(hop.fromPath, alicesRelay.usePath)

        received = bob.expectRequest()
        self.assertEqual(received.method, "SEND")
        self.assertEqual(received.toPath, (bob.ownURI,))
        self.assertEqual(
            received.fromPath, bobsRelay.usePath + alicesRelay.usePath + (alice.ownURI,)
        )
        self.assertEqual(received.body, b"Hello, Bob!\r\n")
        self.assertEqual(received.messageID, "relaymsg0001")
        self.assertEqual(received.contentType, "text/plain")

        # Bob's 200 goes to the previous hop, the relay, which ends it.
        ok = responseTo(received, 200)
        self.assertEqual(ok.toPath, bobsRelay.usePath)
        bob.send(ok)
        self.assertIsNone(alice.receive(QUIET))

        report = reportFor(received)
        self.assertEqual(report.toPath, bobsRelay.toPath(alicesRelay.sdpPath))
        bob.send(report)
        delivered = alice.expectRequest()
        self.assertEqual(delivered.method, "REPORT")
        self.assertEqual(delivered.toPath, (alice.ownURI,))
        self.assertEqual(
            delivered.fromPath, alicesRelay.usePath + bobsRelay.usePath + (bob.ownURI,)
        )
        self.assertEqual(delivered.messageID, "relaymsg0001")
        status = delivered.status
        assert status is not None
        self.assertEqual((status.namespace, status.code), (0, 200))
        self.assertEqual(delivered.byteRange, received.byteRange)
        # A REPORT is never answered (RFC 4975 section 7.1.2): nothing to Bob.
        self.assertIsNone(bob.receive(QUIET))

    def test_unknownSession(self) -> None:
        """
        A SEND to a relay URI the relay never handed out gets 481, whether
        it is the last relay hop or not (RFC 4976 section 6.4).
        """
        relay = self.startRelay()
        alice = self.client(relay, "alice")
        bob = self.client(relay, "bob")
        alicesRelay, _ = alice.authenticate(
            self.authenticator(relay, alice, "alice", "alicepass")
        )
        bogus = MSRPURI("msrp", "127.0.0.1", relay.msrpPort, "nosuchsession")
        for toPath in (
            (bogus, bob.ownURI),
            (bogus,) + alicesRelay.usePath + (bob.ownURI,),
        ):
            with self.subTest(toPath=toPath):
                send = buildRequest(
                    MSRPMethod.SEND,
                    toPath,
                    (alice.ownURI,),
                    [("Message-ID", "lostmsg0001"), ("Byte-Range", "1-2/2")],
                    b"hi",
                    "text/plain",
                )
                alice.send(send)
                response = alice.expectResponse()
                self.assertEqual(
                    (response.transactionID, response.code), (send.transactionID, 481)
                )
                self.assertEqual(response.toPath, (alice.ownURI,))
                self.assertEqual(response.fromPath, (bogus,))
        self.assertIsNone(bob.receive(QUIET))
