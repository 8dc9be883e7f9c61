# -*- test-case-name: tests.msrp.test_reports -*-
"""
Tests for L{stoxgw.msrp.reports}.
"""

from __future__ import annotations

from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.msrp.builders import buildRequest
from stoxgw.msrp.message import (
    ByteRange,
    Continuation,
    MSRPParseError,
    MSRPRequest,
    MSRPResponse,
    Status,
)
from stoxgw.msrp.parser import MSRPParser, parseMessage
from stoxgw.msrp.reports import (
    buildReport,
    reasonPhrase,
    reportFor,
    responseTo,
    responseToError,
)
from stoxgw.msrp.uri import MSRPURI

FIXTURES = FilePath(__file__).parent().parent().child("fixtures").child("msrp")
RELAY = MSRPURI.fromString("msrps://relay.example.com:2855/r1;tcp")
ALICE = MSRPURI.fromString("msrp://alicepc.example.com:7777/iau39soe2843z;tcp")
BOB = MSRPURI.fromString("msrp://bob.example.com:8888/9di4eae923wzd;tcp")


def request(name: str) -> MSRPRequest:
    """
    Parse a request fixture.

    @param name: The fixture file name.
    @return: The request.
    """
    parsed = parseMessage(FIXTURES.child(name).getContent())
    assert isinstance(parsed, MSRPRequest)
    return parsed


class ResponseTests(SynchronousTestCase):
    """
    L{responseTo} and L{responseToError} (R-138, R-142).
    """

    def test_rfcExample(self) -> None:
        """
        R-138: the 200 for RFC 4975 section 11.1 step 4 is byte for byte the
        response of step 5.
        """
        send = request("rfc4975-11.1-send-alice.msrp")
        response = responseTo(send, 200)
        self.assertEqual(
            response.serialize(),
            FIXTURES.child("rfc4975-11.1-200ok-bob.msrp").getContent(),
        )

    def test_sendGoesToPreviousHop(self) -> None:
        """
        R-138: a SEND response goes to the first From-Path URI only, from own
        URI, with the request's transaction id and flag C{$}.
        """
        send = buildRequest("SEND", [BOB], [RELAY, ALICE], transactionID="tid12345")
        response = responseTo(send, 413)
        self.assertEqual(response.transactionID, "tid12345")
        self.assertEqual(response.toPath, (RELAY,))
        self.assertEqual(response.fromPath, (BOB,))
        self.assertEqual((response.code, response.comment), (413, "Message Too Large"))
        self.assertTrue(response.serialize().endswith(b"-------tid12345$\r\n"))

    def test_otherMethodsGetFullPath(self) -> None:
        """
        Responses to non-SEND requests carry the whole From-Path (RFC 4975
        section 7.2); own URI and comment can be given.
        """
        nickname = buildRequest("NICKNAME", [BOB], [RELAY, ALICE],
                                [("Use-Nickname", '"x"')])
        own = MSRPURI.fromString("msrp://gw.example.com:2855/s;tcp")
        response = responseTo(nickname, 425, "Taken", fromURI=own)
        self.assertEqual(response.toPath, (RELAY, ALICE))
        self.assertEqual(response.fromPath, (own,))
        self.assertEqual(response.comment, "Taken")

    def test_neverAnswerReport(self) -> None:
        """
        R-142: REPORTs are never answered.
        """
        report = request("rfc4975-11.6-report.msrp")
        self.assertRaises(ValueError, responseTo, report, 200)

    def test_responseToError(self) -> None:
        """
        R-138: a parse error for a request with paths is answered with its
        code; the response goes to the previous hop.
        """
        data = (
            b"MSRP abcd SEND\r\n"
            b"To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
            b"From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
            b"Content-Type: text/plain\r\n\r\n" + b"x" * 200 + b"\r\n-------abcd$\r\n"
        )
        [error] = MSRPParser(maxChunkBytes=100).feed(data)
        assert isinstance(error, MSRPParseError)
        response = responseToError(error)
        assert response is not None
        self.assertEqual(
            response.serialize(),
            b"MSRP abcd 413 Message Too Large\r\n"
            b"To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
            b"From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
            b"-------abcd$\r\n",
        )

    def test_responseToErrorUnaddressable(self) -> None:
        """
        Errors for responses, REPORTs, unparsed start lines or missing paths
        get no response; a missing To-Path needs an explicit own URI.
        """
        cases = [
            MSRPParseError(400, "x", fatal=True),
            MSRPParseError(400, "x", transactionID="abcd"),
            MSRPParseError(400, "x", transactionID="abcd", method="SEND"),
            MSRPParseError(400, "x", transactionID="abcd", method="REPORT",
                           fromPath=(ALICE,), toPath=(BOB,)),
            MSRPParseError(400, "x", transactionID="abcd", method="SEND",
                           fromPath=(ALICE,)),
        ]
        for error in cases:
            self.assertIsNone(responseToError(error))
        response = responseToError(cases[-1], fromURI=BOB)
        assert isinstance(response, MSRPResponse)
        self.assertEqual((response.code, response.toPath), (400, (ALICE,)))

    def test_reasonPhrase(self) -> None:
        """
        Default comments exist for the codes of RFC 4975 and RFC 7701.
        """
        for code in (200, 400, 403, 404, 408, 413, 415, 423, 424, 425, 428, 481, 501,
                     506):
            self.assertIsInstance(reasonPhrase(code), str)
        self.assertIsNone(reasonPhrase(299))


class ReportTests(SynchronousTestCase):
    """
    L{reportFor} and L{buildReport} (R-140, R-141, R-142).
    """

    def test_rfcExample(self) -> None:
        """
        R-141: the success REPORT for RFC 4975 section 11.6 has the example's
        headers (with the Byte-Range of the actual body) and parses back.
        """
        send = request("rfc4975-11.6-send-html.msrp")
        report = reportFor(send, transactionID="dkei38sd", byteRange=ByteRange(1, 106, 106))
        self.assertEqual(
            report.serialize(),
            FIXTURES.child("rfc4975-11.6-report.msrp").getContent(),
        )

    def test_success(self) -> None:
        """
        R-141, R-142: To-Path is the SEND's whole From-Path, Message-ID is
        copied, C{Status: 000 200 OK}, no Success-/Failure-Report, no body.
        """
        send = buildRequest(
            "SEND", [RELAY, BOB], [ALICE],
            [("Message-ID", "m9876"), ("Byte-Range", "1-5/5"), ("Success-Report", "yes")],
            body=b"hello", contentType="text/plain",
        )
        report = reportFor(send, fromURI=BOB)
        self.assertEqual(report.method, "REPORT")
        self.assertEqual(report.toPath, (ALICE,))
        self.assertEqual(report.fromPath, (BOB,))
        self.assertEqual(report.messageID, "m9876")
        self.assertEqual(report.status, Status(0, 200, "OK"))
        self.assertEqual(report.byteRange, ByteRange(1, 5, 5))
        self.assertIsNone(report.header("Success-Report"))
        self.assertIsNone(report.header("Failure-Report"))
        self.assertIsNone(report.body)
        self.assertEqual(report.continuation, Continuation.END)
        self.assertEqual(parseMessage(report.serialize()), report)

    def test_failureRangeFromBody(self) -> None:
        """
        R-140: a failure REPORT for an interrupted chunk takes start and total
        from the SEND and computes the end from the body received.
        """
        send = buildRequest(
            "SEND", [BOB], [ALICE],
            [("Message-ID", "m9876"), ("Byte-Range", "2049-*/10000")],
            body=b"x" * 100, contentType="text/plain", continuation=Continuation.MORE,
        )
        report = reportFor(send, 403)
        self.assertEqual(report.byteRange, ByteRange(2049, 2148, 10000))
        self.assertEqual(report.status, Status(0, 403, "Forbidden"))
        self.assertEqual(report.header("Status"), "000 403 Forbidden")

    def test_noByteRange(self) -> None:
        """
        Without a Byte-Range the SEND held the whole message.
        """
        send = buildRequest("SEND", [BOB], [ALICE], [("Message-ID", "m9876")],
                            body=b"abc", contentType="text/plain")
        self.assertEqual(reportFor(send).byteRange, ByteRange(1, 3, 3))

    def test_needsMessageID(self) -> None:
        """
        R-142: a REPORT must carry the Message-ID.
        """
        send = buildRequest("SEND", [BOB], [ALICE])
        self.assertRaises(ValueError, reportFor, send)

    def test_buildReport(self) -> None:
        """
        L{buildReport} for a reassembled message, without Byte-Range.
        """
        report = buildReport((ALICE,), (BOB,), "m9876", Status(0, 413, "Too big"), None)
        self.assertIsNone(report.byteRange)
        self.assertEqual(
            [field.name for field in report.headers],
            ["To-Path", "From-Path", "Message-ID", "Status"],
        )
