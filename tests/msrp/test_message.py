# -*- test-case-name: tests.msrp.test_message -*-
"""
Tests for L{stoxgw.msrp.message} and L{stoxgw.msrp.builders}.
"""

from __future__ import annotations

import re

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.msrp import builders as buildersModule
from stoxgw.msrp.builders import (
    buildRequest,
    buildResponse,
    endLineOccursIn,
    generateMessageID,
    generateTransactionID,
    pickTransactionID,
)
from stoxgw.msrp.message import (
    AuthParameters,
    ByteRange,
    Continuation,
    FailureReport,
    MSRPHeader,
    MSRPMethod,
    MSRPParseError,
    MSRPRequest,
    MSRPResponse,
    Status,
    SuccessReport,
    isIdent,
    parseAuthParameters,
)
from stoxgw.msrp.parser import parseMessage
from stoxgw.msrp.uri import MSRPURI

ALICE = MSRPURI.fromString("msrp://alicepc.example.com:7777/iau39soe2843z;tcp")
BOB = MSRPURI.fromString("msrp://bob.example.com:8888/9di4eae923wzd;tcp")
IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}\Z")


def requestWith(*headers: tuple[str, str]) -> MSRPRequest:
    """
    Make a bodiless SEND with extra headers.

    @param headers: C{(name, value)} pairs.
    @return: The request.
    """
    return buildRequest("SEND", [BOB], [ALICE], headers, transactionID="abcd1234")


class BuildRequestTests(SynchronousTestCase):
    """
    L{buildRequest} produces canonical requests (R-127, R-129, R-130).
    """

    def test_withBody(self) -> None:
        """
        R-127, R-129: To-Path first, From-Path second, Content-Type last, an
        empty line before the body and a CRLF before the end-line; the bytes
        are those of RFC 4975 section 11.1 step 4.
        """
        request = buildRequest(
            MSRPMethod.SEND,
            [BOB],
            [ALICE],
            [("Message-ID", "12339sdqwer"), ("Byte-Range", "1-16/16")],
            body=b"Hi, I'm Alice!",
            contentType="text/plain",
            transactionID="d93kswow",
        )
        self.assertEqual(
            request.serialize(),
            b"MSRP d93kswow SEND\r\n"
            b"To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
            b"From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
            b"Message-ID: 12339sdqwer\r\n"
            b"Byte-Range: 1-16/16\r\n"
            b"Content-Type: text/plain\r\n"
            b"\r\n"
            b"Hi, I'm Alice!\r\n"
            b"-------d93kswow$\r\n",
        )
        self.assertEqual(request.toPath, (BOB,))
        self.assertEqual(request.fromPath, (ALICE,))
        self.assertEqual(request.knownMethod, MSRPMethod.SEND)

    def test_bodiless(self) -> None:
        """
        R-129: a bodiless request has no Content-Type and its end-line
        directly follows the last header (the NICKNAME of RFC 7701 9.2).
        """
        chat = MSRPURI.fromString("msrp://chat.example.com:12763/kjhd37s2s20w2a;tcp")
        client = MSRPURI.fromString(
            "msrp://client.atlanta.example.com:7654/jshA7weztas;tcp"
        )
        request = buildRequest(
            "NICKNAME",
            [chat],
            [client],
            [("Use-Nickname", '"Alice the great"')],
            transactionID="d93kswow",
        )
        data = request.serialize()
        self.assertEqual(
            data,
            b"MSRP d93kswow NICKNAME\r\n"
            b"To-Path: msrp://chat.example.com:12763/kjhd37s2s20w2a;tcp\r\n"
            b"From-Path: msrp://client.atlanta.example.com:7654/jshA7weztas;tcp\r\n"
            b'Use-Nickname: "Alice the great"\r\n'
            b"-------d93kswow$\r\n",
        )
        self.assertIsNone(request.contentType)
        self.assertNotIn(b"Content-Type", data)

    def test_emptyBody(self) -> None:
        """
        An empty body differs from no body: Content-Type, empty line, CRLF.
        """
        request = buildRequest(
            "SEND", [BOB], [ALICE], body=b"", contentType="text/plain",
            transactionID="abcd",
        )
        self.assertTrue(
            request.serialize().endswith(b"Content-Type: text/plain\r\n\r\n\r\n-------abcd$\r\n")
        )
        self.assertEqual(parseMessage(request.serialize()), request)

    def test_continuation(self) -> None:
        """
        The end-line carries the continuation flag.
        """
        for flag in Continuation:
            request = buildRequest(
                "SEND", [BOB], [ALICE], body=b"x", contentType="text/plain",
                continuation=flag, transactionID="abcd",
            )
            self.assertEqual(request.endLine, b"-------abcd" + flag.value.encode() + b"\r\n")
            self.assertTrue(request.serialize().endswith(b"x\r\n" + request.endLine))

    def test_generatedTransactionID(self) -> None:
        """
        R-128: without an explicit transaction id a fresh ident is used.
        """
        first = buildRequest("SEND", [BOB], [ALICE])
        second = buildRequest("SEND", [BOB], [ALICE])
        self.assertTrue(isIdent(first.transactionID))
        self.assertNotEqual(first.transactionID, second.transactionID)

    def test_roundTrip(self) -> None:
        """
        A built request parses back to an equal request.
        """
        request = buildRequest(
            "SEND", [BOB, ALICE], [ALICE], [("Message-ID", "m1234")],
            body=b"\x00\xffbinary\r\n-------", contentType="application/octet-stream",
        )
        self.assertEqual(parseMessage(request.serialize()), request)

    def test_invalid(self) -> None:
        """
        The builder refuses requests that violate RFC 4975.
        """
        cases: list[dict[str, object]] = [
            dict(method="send"),
            dict(toPath=[]),
            dict(fromPath=[]),
            dict(body=b"x"),
            dict(contentType="text/plain"),
            dict(headers=[("Content-Disposition", "inline")]),
            dict(headers=[("To-Path", str(BOB))]),
            dict(headers=[("Content-Type", "text/plain")]),
            dict(headers=[("Bad Name", "x")]),
            dict(headers=[("X-Header", "a\r\nb")]),
            dict(transactionID="abc"),
            dict(method="REPORT", body=b"x" * 10241, contentType="text/plain"),
        ]
        for case in cases:
            with self.subTest(case=case):
                arguments: dict[str, object] = dict(
                    method="SEND", toPath=[BOB], fromPath=[ALICE]
                )
                arguments.update(case)
                self.assertRaises(ValueError, buildRequest, **arguments)


class BuildResponseTests(SynchronousTestCase):
    """
    L{buildResponse}.
    """

    def test_canonical(self) -> None:
        """
        R-127: start line with code and comment, To-Path, From-Path, end-line
        with C{$} (RFC 4975 section 11.1 step 5).
        """
        response = buildResponse("d93kswow", 200, "OK", [ALICE], [BOB])
        self.assertEqual(
            response.serialize(),
            b"MSRP d93kswow 200 OK\r\n"
            b"To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
            b"From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
            b"-------d93kswow$\r\n",
        )

    def test_noComment(self) -> None:
        """
        The comment is optional.
        """
        response = buildResponse("d93kswow", 481, None, [ALICE], [BOB])
        self.assertTrue(response.serialize().startswith(b"MSRP d93kswow 481\r\n"))
        self.assertEqual(parseMessage(response.serialize()), response)

    def test_invalid(self) -> None:
        """
        Invalid ids, codes, comments and paths are refused.
        """
        self.assertRaises(ValueError, buildResponse, "a", 200, "OK", [ALICE], [BOB])
        self.assertRaises(ValueError, buildResponse, "abcd", 20, "OK", [ALICE], [BOB])
        self.assertRaises(ValueError, buildResponse, "abcd", 200, "O\nK", [ALICE], [BOB])
        self.assertRaises(ValueError, buildResponse, "abcd", 200, "OK", [], [BOB])


class IdentifierTests(SynchronousTestCase):
    """
    Transaction ids and Message-IDs (R-128, R-130, R-132).
    """

    def test_transactionIDs(self) -> None:
        """
        R-128: 10^5 generated transaction ids are unique, match the ident
        syntax and carry at least 64 bits (16 base32 characters = 80 bits).
        """
        ids = [generateTransactionID() for _ in range(100000)]
        self.assertEqual(len(set(ids)), len(ids))
        for tid in ids[:1000]:
            self.assertTrue(IDENT.match(tid), tid)
            self.assertEqual(len(tid), 16)
        self.assertTrue(all(isIdent(tid) for tid in ids))
        self.assertLessEqual(set("".join(ids)), set("abcdefghijklmnopqrstuvwxyz234567"))

    def test_messageIDs(self) -> None:
        """
        R-132: Message-IDs are idents and do not repeat.
        """
        ids = [generateMessageID() for _ in range(10000)]
        self.assertEqual(len(set(ids)), len(ids))
        self.assertTrue(all(isIdent(mid) and len(mid) == 24 for mid in ids))

    def test_isIdent(self) -> None:
        """
        ident = ALPHANUM 3*31ident-char.
        """
        for good in ["abcd", "a.-+", "1%=z", "a" * 32]:
            self.assertTrue(isIdent(good), good)
        for bad in ["abc", "-abc", "a" * 33, "ab cd", "ab_c", ""]:
            self.assertFalse(isIdent(bad), bad)

    def test_endLineOccursIn(self) -> None:
        """
        R-130: the end-line of an id is detected in a body.
        """
        self.assertTrue(endLineOccursIn(b"x\r\n-------abcd$\r\ny", "abcd"))
        self.assertTrue(endLineOccursIn(b"-------abcd+", "abcd"))
        self.assertFalse(endLineOccursIn(b"------abcd$", "abcd"))
        self.assertFalse(endLineOccursIn(b"-------abce$", "abcd"))

    def test_pickVerifies(self) -> None:
        """
        R-130: a given transaction id whose end-line occurs in the body is
        refused; one that does not is kept.
        """
        body = b"text\r\n-------abcd1234$\r\nmore"
        self.assertRaises(ValueError, pickTransactionID, body, "abcd1234")
        self.assertEqual(pickTransactionID(body, "wxyz1234"), "wxyz1234")
        self.assertEqual(pickTransactionID(None, "abcd1234"), "abcd1234")
        self.assertRaises(ValueError, pickTransactionID, None, "no")

    def test_pickAvoidsBody(self) -> None:
        """
        R-130: a picked id never has its end-line in the body, even when the
        generator first proposes one that does.
        """
        proposals = iter(["abcd1234", "abcd1234", "efgh5678"])
        self.patch(buildersModule, "generateTransactionID", lambda: next(proposals))
        body = b"quoted:\r\n-------abcd1234$\r\n"
        self.assertEqual(pickTransactionID(body), "efgh5678")

    def test_builderAvoidsBody(self) -> None:
        """
        R-130: a request built for a body containing another request's
        end-line parses back with the whole body intact.
        """
        inner = b"MSRP abcd1234 SEND\r\n\r\n-------abcd1234$\r\n"
        request = buildRequest("SEND", [BOB], [ALICE], body=inner, contentType="message/x")
        self.assertFalse(endLineOccursIn(inner, request.transactionID))
        parsed = parseMessage(request.serialize())
        assert isinstance(parsed, MSRPRequest)
        self.assertEqual(parsed.body, inner)


class ValueTests(SynchronousTestCase):
    """
    Byte-Range, Status and digest parameter values.
    """

    def test_byteRange(self) -> None:
        """
        R-134: Byte-Range with numbers and C{*}; C{1-0/0} for empty content.
        """
        cases = {
            "1-25/25": ByteRange(1, 25, 25),
            "1-*/8": ByteRange(1, None, 8),
            "1-*/*": ByteRange(1, None, None),
            "138-148/148": ByteRange(138, 148, 148),
            "1-0/0": ByteRange(1, 0, 0),
        }
        for text, expected in cases.items():
            self.assertEqual(ByteRange.fromString(text), expected)
            self.assertEqual(expected.serialize(), text)
        for bad in ["0-1/1", "5-3/9", "1-9/5", "1-2", "a-b/c", "1 - 2/3", "-1-2/3"]:
            self.assertRaises(ValueError, ByteRange.fromString, bad)

    def test_status(self) -> None:
        """
        Status: namespace, code and optional comment.
        """
        self.assertEqual(Status.fromString("000 200 OK"), Status(0, 200, "OK"))
        self.assertEqual(Status.fromString("000 413"), Status(0, 413, None))
        self.assertEqual(Status(0, 200, "OK").serialize(), "000 200 OK")
        self.assertEqual(Status(1, 2).serialize(), "001 002")
        for bad in ["200 OK", "000  200", "0 200", "000 2000"]:
            self.assertRaises(ValueError, Status.fromString, bad)

    def test_authParameters(self) -> None:
        """
        RFC 4976 digest parameter lists: scheme, token and quoted values,
        escapes, case-insensitive lookup.
        """
        parsed = parseAuthParameters(
            'Digest realm="example.com", nonce="a\\"b", qop="auth",algorithm=MD5'
        )
        self.assertEqual(parsed.scheme, "Digest")
        self.assertEqual(
            parsed.parameters,
            (("realm", "example.com"), ("nonce", 'a"b'), ("qop", "auth"),
             ("algorithm", "MD5")),
        )
        self.assertEqual(parsed.get("NONCE"), 'a"b')
        self.assertIsNone(parsed.get("opaque"))
        info = parseAuthParameters('nextnonce="xyz", rspauth="abc"', hasScheme=False)
        self.assertEqual(info, AuthParameters(None, (("nextnonce", "xyz"), ("rspauth", "abc"))))
        for bad in ['Digest realm="x', "Digest realm=", 'Digest a="1" b="2"', ""]:
            self.assertRaises(ValueError, parseAuthParameters, bad)
        self.assertRaises(ValueError, parseAuthParameters, "", False)


class AccessorTests(SynchronousTestCase):
    """
    Typed header accessors.
    """

    def test_absent(self) -> None:
        """
        Absent headers give L{None}; R-133 defaults apply.
        """
        request = requestWith()
        self.assertIsNone(request.messageID)
        self.assertIsNone(request.byteRange)
        self.assertIsNone(request.successReport)
        self.assertIsNone(request.failureReport)
        self.assertFalse(request.wantsSuccessReport)
        self.assertEqual(request.effectiveFailureReport, FailureReport.YES)
        self.assertIsNone(request.status)
        self.assertIsNone(request.contentType)
        self.assertIsNone(request.useNickname)
        self.assertIsNone(request.usePath)
        self.assertEqual(request.wwwAuthenticate, [])
        self.assertIsNone(request.authorization)
        self.assertIsNone(request.authenticationInfo)
        self.assertIsNone(request.expires)

    def test_present(self) -> None:
        """
        Present headers are parsed, names matched case-insensitively.
        """
        request = requestWith(
            ("message-id", "4564dpWd"),
            ("Byte-Range", "1-*/8"),
            ("Success-Report", "yes"),
            ("Failure-Report", "partial"),
            ("Status", "000 200 OK"),
            ("Use-Nickname", '"Alice \\"the\\" great"'),
            ("Use-Path", f"{ALICE} {BOB}"),
            ("WWW-Authenticate", 'Digest realm="r1", nonce="n1"'),
            ("WWW-Authenticate", 'Digest realm="r2", nonce="n2"'),
            ("Authorization", 'Digest username="alice", response="abc"'),
            ("Authentication-Info", 'rspauth="xyz"'),
            ("Expires", "900"),
        )
        self.assertEqual(request.header("MESSAGE-ID"), "4564dpWd")
        self.assertEqual(request.messageID, "4564dpWd")
        self.assertEqual(request.byteRange, ByteRange(1, None, 8))
        self.assertEqual(request.successReport, SuccessReport.YES)
        self.assertTrue(request.wantsSuccessReport)
        self.assertEqual(request.failureReport, FailureReport.PARTIAL)
        self.assertEqual(request.effectiveFailureReport, FailureReport.PARTIAL)
        self.assertEqual(request.status, Status(0, 200, "OK"))
        self.assertEqual(request.useNickname, 'Alice "the" great')
        self.assertEqual(request.usePath, (ALICE, BOB))
        self.assertEqual([c.get("realm") for c in request.wwwAuthenticate], ["r1", "r2"])
        auth = request.authorization
        assert auth is not None
        self.assertEqual(auth.get("username"), "alice")
        info = request.authenticationInfo
        assert info is not None
        self.assertEqual(info.get("rspauth"), "xyz")
        self.assertEqual(request.expires, 900)
        self.assertEqual(request.headerValues("www-authenticate")[1], 'Digest realm="r2", nonce="n2"')

    def test_removeNickname(self) -> None:
        """
        RFC 7701 section 7.3: an empty quoted string removes the nickname.
        """
        self.assertEqual(requestWith(("Use-Nickname", '""')).useNickname, "")

    def test_malformed(self) -> None:
        """
        Malformed values raise L{MSRPParseError} with 400 addressed like the
        request; a malformed nickname gives 424 (RFC 7701 section 7.1).
        """
        cases = [
            ("Message-ID", "x", "messageID", 400),
            ("Byte-Range", "1-2", "byteRange", 400),
            ("Success-Report", "partial", "successReport", 400),
            ("Failure-Report", "Yes", "failureReport", 400),
            ("Status", "200 OK", "status", 400),
            ("Use-Nickname", "Alice", "useNickname", 424),
            ("Use-Nickname", '"' + "x" * 1024 + '"', "useNickname", 424),
            ("Use-Path", "sip:x", "usePath", 400),
            ("WWW-Authenticate", "Digest realm=", "wwwAuthenticate", 400),
            ("Authorization", "", "authorization", 400),
            ("Authentication-Info", "x", "authenticationInfo", 400),
            ("Expires", "soon", "expires", 400),
        ]
        for name, value, accessor, code in cases:
            with self.subTest(name=name, value=value):
                request = requestWith((name, value))
                error = self.assertRaises(
                    MSRPParseError, getattr, request, accessor
                )
                self.assertEqual(error.code, code)
                self.assertFalse(error.fatal)
                self.assertEqual(error.transactionID, "abcd1234")
                self.assertEqual(error.method, "SEND")
                self.assertEqual(error.fromPath, (ALICE,))
                self.assertEqual(error.toPath, (BOB,))

    def test_responseAccessors(self) -> None:
        """
        Responses have the same accessors (RFC 7701 9.3 responses carry a
        Message-ID).
        """
        response = buildResponse(
            "abcd", 200, "OK", [ALICE], [BOB], [("Message-ID", "99s9s2")]
        )
        self.assertEqual(response.messageID, "99s9s2")

    def test_unknownMethod(self) -> None:
        """
        Extension methods are kept as strings; C{knownMethod} is L{None}.
        """
        request = buildRequest("FROB", [BOB], [ALICE])
        self.assertEqual(request.method, "FROB")
        self.assertIsNone(request.knownMethod)


class SerializationTests(SynchronousTestCase):
    """
    Byte-exact serialization of what was received.
    """

    def test_spacingAndCaseKept(self) -> None:
        """
        Header name case, the spacing after the colon and order survive a
        round trip, even where RFC 4975 asks for other forms.
        """
        data = (
            b"MSRP abcd SEND\r\n"
            b"to-path: msrp://bob.example.com:8888/s;tcp\r\n"
            b"FROM-PATH:\tmsrp://alicepc.example.com:7777/t;tcp\r\n"
            b"X-Thing:value\r\n"
            b"Message-ID:   m1234\r\n"
            b"Content-Type: text/plain\r\n"
            b"\r\n"
            b"hello\r\n"
            b"-------abcd+\r\n"
        )
        request = parseMessage(data)
        assert isinstance(request, MSRPRequest)
        self.assertEqual(request.serialize(), data)
        self.assertEqual(
            request.headers[1],
            MSRPHeader("FROM-PATH", "msrp://alicepc.example.com:7777/t;tcp", "\t"),
        )
        self.assertEqual(request.headers[2], MSRPHeader("X-Thing", "value", ""))
        self.assertEqual(request.messageID, "m1234")
        self.assertEqual(request.continuation, Continuation.MORE)

    def test_responseWithoutComment(self) -> None:
        """
        A response with an empty comment keeps it.
        """
        data = (
            b"MSRP abcd 200 \r\n"
            b"To-Path: msrp://bob.example.com:8888/s;tcp\r\n"
            b"From-Path: msrp://alicepc.example.com:7777/t;tcp\r\n"
            b"-------abcd$\r\n"
        )
        response = parseMessage(data)
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.comment, "")
        self.assertEqual(response.serialize(), data)

    def test_utf8(self) -> None:
        """
        Header values and comments are UTF-8 (RFC 4975 section 9).
        """
        data = (
            "MSRP abcd 425 Spitzname vergeben \u2013 bitte w\u00e4hlen\r\n"
            "To-Path: msrp://bob.example.com:8888/s;tcp\r\n"
            "From-Path: msrp://alicepc.example.com:7777/t;tcp\r\n"
            'X-Nick: "J\u00fcrgen"\r\n'
            "-------abcd$\r\n"
        ).encode("utf-8")
        response = parseMessage(data)
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.code, 425)
        self.assertEqual(response.header("x-nick"), '"J\u00fcrgen"')
        self.assertEqual(response.serialize(), data)

    def test_parseErrorText(self) -> None:
        """
        L{MSRPParseError} renders its code and reason.
        """
        error = MSRPParseError(413, "too big", transactionID="abcd")
        self.assertEqual(str(error), "413 too big")
        self.assertIn("'abcd'", repr(error))
