# -*- test-case-name: tests.formats.test_chatroom -*-
"""
Tests for L{stoxgw.formats.chatroom}: the wrapper checks of a SEND in an
RFC 7701 chat room.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.formats.chatroom import Refused, chatroomTokens, unwrapCPIM

#: A SEND body as RFC 7701 section 6 has it (From the sender, To the room).
GOOD = (
    b"From: <sip:alice@example.com>\r\nTo: <sip:room@chat.example>\r\n\r\n"
    b"Content-Type: text/plain\r\n\r\nhi"
)


class UnwrapTests(SynchronousTestCase):
    """
    L{unwrapCPIM} refuses with the MSRP status, or gives the CPIM message.
    """

    def refused(self, contentType: str, body: bytes) -> tuple[int, str]:
        """
        The status and reason of the L{Refused} that C{unwrapCPIM} raises.
        """
        e = self.assertRaises(Refused, unwrapCPIM, contentType, body)
        return e.code, e.reason

    def test_unwrapped(self) -> None:
        """
        A well-formed C{message/cpim} SEND gives its CPIM message (outer
        parameters and case do not matter).
        """
        cpim = unwrapCPIM("Message/CPIM;x=y", GOOD)
        self.assertEqual(cpim.toAddresses[0].uri, "sip:room@chat.example")
        self.assertEqual(cpim.body, b"hi")

    def test_notCPIM(self) -> None:
        """
        RFC 7701 section 6.3: a SEND that is not C{message/cpim} gets 415,
        also when its C{Content-Type} is unreadable.
        """
        self.assertEqual(self.refused("text/plain", b"hi")[0], 415)
        self.assertEqual(self.refused("/", GOOD)[0], 415)

    def test_malformed(self) -> None:
        """
        Malformed CPIM, also in C{From}, C{To} or the encapsulated
        C{Content-Type} (which L{CPIMMessage} parses only when asked): 400.
        """
        for body in [
            b"garbage",
            GOOD.replace(b"To: <sip:room@chat.example>", b"To: <sip:room"),
            GOOD.replace(b"From: <sip:alice@example.com>", b"From: \"x"),
            GOOD.replace(b"Content-Type: text/plain", b"Content-Type: /"),
        ]:
            code, reason = self.refused("message/cpim", body)
            self.assertEqual(code, 400, body)
            self.assertIn("malformed CPIM", reason)

    def test_requireNotUnderstood(self) -> None:
        """
        A C{Require} naming a header the receiver does not understand: 415
        (RFC 3862 sections 3.5 and 4.7).
        """
        body = GOOD.replace(
            b"\r\n\r\n", b"\r\nNS: X <urn:x>\r\nRequire: X.Vital\r\nX.Vital: yes\r\n\r\n", 1
        )
        code, reason = self.refused("message/cpim", body)
        self.assertEqual(code, 415)
        self.assertIn("X.Vital", reason)


class TokenTests(SynchronousTestCase):
    """
    L{chatroomTokens}: a peer's C{a=chatroom} tokens (RFC 7701 section 8).
    """

    def test_tokens(self) -> None:
        """
        Tokens are read in lower case; RFC 7701's prose spelling
        C{nicknames} counts as C{nickname}; no attribute, no tokens.
        """
        self.assertEqual(
            chatroomTokens(("Nicknames", "PRIVATE-MESSAGES")),
            frozenset({"nicknames", "nickname", "private-messages"}),
        )
        self.assertEqual(chatroomTokens(None), frozenset())
