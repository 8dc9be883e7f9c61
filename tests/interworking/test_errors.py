# -*- test-case-name: tests.interworking.test_errors -*-
"""
Tests for L{stoxgw.interworking.errors}: every row of SPEC.md tables E.1-E.5
and E.8, written out here independently of the module (nothing is parsed at
run time), plus fallbacks, unknown inputs and round trips.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.interworking import errors
from stoxgw.interworking.errors import (
    Condition,
    DisconnectionMethod,
    ErrorType,
    LocalMSRPFailure,
    MSRPMethod,
    MUCExchange,
    MUCStatus,
    Termination,
    asCondition,
    disconnectionMethodForMUCRemoval,
    errorTypeFor,
    goneCarriesAddress,
    msrpReasonPhrase,
    msrpStatusEndsSession,
    msrpStatusForLocalFailure,
    msrpStatusForStanzaError,
    mucStatusForDisconnectionMethod,
    mucStatusForSIPBye,
    mucStatusForTermination,
    removalStatus,
    sipReasonCauseForMUCRemoval,
    sipStatusForMUCEntryError,
    sipStatusForStanzaError,
    stanzaErrorForMSRPStatus,
    stanzaErrorForSIPEntryFailure,
    stanzaErrorForSIPStatus,
)
from stoxgw.xmpp import stanzas

#: RFC 6120 section 8.3.3.1-8.3.3.22: the error type each condition SHOULD
#: have (first of two where the RFC names two; undefined-condition: any).
RFC6120_TYPES = {
    "bad-request": "modify",
    "conflict": "cancel",
    "feature-not-implemented": "cancel",
    "forbidden": "auth",
    "gone": "cancel",
    "internal-server-error": "cancel",
    "item-not-found": "cancel",
    "jid-malformed": "modify",
    "not-acceptable": "modify",
    "not-allowed": "cancel",
    "not-authorized": "auth",
    "policy-violation": "modify",
    "recipient-unavailable": "wait",
    "redirect": "modify",
    "registration-required": "auth",
    "remote-server-not-found": "cancel",
    "remote-server-timeout": "wait",
    "resource-constraint": "wait",
    "service-unavailable": "cancel",
    "subscription-required": "auth",
    "undefined-condition": "cancel",
    "unexpected-request": "wait",
}

#: SPEC E.1 (R-108): condition -> (full JID / default, bare JID).
E1_ROWS = {
    "bad-request": (400, 400),
    "conflict": (400, 400),
    "feature-not-implemented": (405, 501),
    "forbidden": (403, 603),
    "gone": (410, 410),
    "internal-server-error": (500, 500),
    "item-not-found": (404, 604),
    "jid-malformed": (400, 400),
    "not-acceptable": (406, 606),
    "not-allowed": (403, 403),
    "not-authorized": (401, 401),
    "policy-violation": (403, 403),
    "recipient-unavailable": (480, 600),
    "redirect": (302, 302),
    "registration-required": (407, 407),
    "remote-server-not-found": (404, 404),
    "remote-server-timeout": (408, 408),
    "resource-constraint": (500, 500),
    "service-unavailable": (403, 403),
    "subscription-required": (400, 400),
    "undefined-condition": (400, 400),
    "unexpected-request": (491, 491),
}

#: SPEC E.2 (R-111), RFC 7247 Table 3, listed codes.
E2_ROWS = {
    300: "redirect",
    301: "gone",
    302: "redirect",
    305: "redirect",
    380: "not-acceptable",
    400: "bad-request",
    401: "not-authorized",
    402: "bad-request",
    403: "forbidden",
    404: "item-not-found",
    405: "feature-not-implemented",
    406: "not-acceptable",
    407: "registration-required",
    408: "remote-server-timeout",
    410: "gone",
    413: "policy-violation",
    414: "policy-violation",
    415: "not-acceptable",
    416: "not-acceptable",
    420: "feature-not-implemented",
    421: "not-acceptable",
    423: "resource-constraint",
    430: "recipient-unavailable",
    439: "feature-not-implemented",
    440: "policy-violation",
    480: "recipient-unavailable",
    481: "item-not-found",
    482: "not-acceptable",
    483: "not-acceptable",
    484: "item-not-found",
    485: "item-not-found",
    486: "recipient-unavailable",
    487: "recipient-unavailable",
    488: "not-acceptable",
    489: "policy-violation",
    491: "unexpected-request",
    493: "bad-request",
    500: "internal-server-error",
    501: "feature-not-implemented",
    502: "remote-server-not-found",
    503: "internal-server-error",
    504: "remote-server-timeout",
    505: "not-acceptable",
    513: "policy-violation",
    600: "recipient-unavailable",
    603: "recipient-unavailable",
    604: "item-not-found",
    606: "not-acceptable",
}

#: SPEC E.3: (MSRP code, request) -> (condition, type); None: any request.
E3_ROWS = {
    (425, "NICKNAME"): ("conflict", "cancel"),  # 7702 section 5.6
    (424, "NICKNAME"): ("jid-malformed", "modify"),
    (403, "NICKNAME"): ("not-acceptable", "cancel"),
    (501, "NICKNAME"): ("feature-not-implemented", "cancel"),
    (403, "SEND"): ("forbidden", "auth"),
    (404, "SEND"): ("item-not-found", "cancel"),
    (428, "SEND"): ("feature-not-implemented", "cancel"),
    (415, "SEND"): ("not-acceptable", "modify"),
    (413, "SEND"): ("policy-violation", "modify"),
    (413, "REPORT"): ("policy-violation", "modify"),
    (400, "SEND"): ("bad-request", "modify"),
    (400, "NICKNAME"): ("bad-request", "modify"),
    (408, "SEND"): ("remote-server-timeout", "wait"),
    (408, "NICKNAME"): ("remote-server-timeout", "wait"),
    (506, "SEND"): ("internal-server-error", "cancel"),
}

#: SPEC E.4, MUC-answer rows: (condition, exchange) -> MSRP status.
E4_ROWS = {
    ("conflict", "nickname"): 425,  # 7702 section 6.4
    ("not-acceptable", "nickname"): 425,
    ("jid-malformed", "nickname"): 424,
    ("not-allowed", "nickname"): 403,
    ("forbidden", "nickname"): 403,
    ("forbidden", "groupchat"): 403,
    ("not-acceptable", "groupchat"): 403,
    ("item-not-found", "private"): 404,
    ("not-allowed", "private"): 428,
    ("forbidden", "private"): 428,
    ("bad-request", "groupchat"): 400,
    ("bad-request", "private"): 400,
    ("bad-request", "nickname"): 400,
    ("policy-violation", "groupchat"): 413,
    ("resource-constraint", "private"): 413,
    ("service-unavailable", "groupchat"): 403,
    ("internal-server-error", "groupchat"): 403,
    ("remote-server-not-found", "private"): 403,
    ("remote-server-timeout", "groupchat"): 408,
    ("remote-server-timeout", "nickname"): 408,
}

#: SPEC E.4, local rows.
E4_LOCAL_ROWS = {
    "NO_CPIM_WRAPPER": 415,  # 7701 section 6.3
    "NO_CPIM_TO": 400,  # neither room nor private message; the native focus's 400
    "MULTIPLE_CPIM_TO": 403,  # 7701 sections 6.1-6.3
    "INVALID_CPIM_FROM": 403,
    "UNKNOWN_RECIPIENT": 404,  # 7701 section 6.2
    "PRIVATE_MESSAGES_UNSUPPORTED": 428,
    "TOO_LARGE": 413,  # 7573 section 8
    "UNKNOWN_SESSION": 481,  # 4975 section 7.3
}

#: SPEC E.5 entry rows, "SIP (Gateway B answer)" column.
E5_ENTRY_GATEWAY_B = {
    "not-authorized": 403,
    "forbidden": 403,
    "item-not-found": 404,
    "not-allowed": 403,
    "not-acceptable": 403,
    "registration-required": 403,
    "conflict": 486,
    "service-unavailable": 486,
    "jid-malformed": 400,
}

#: SPEC E.5 entry rows, "SIP (seen by Gateway A) -> XMPP" column, with the
#: error types (XEP-0045 for service-unavailable and not-acceptable, else
#: RFC 6120).
E5_ENTRY_GATEWAY_A = {
    401: ("not-authorized", "auth"),
    407: ("not-authorized", "auth"),
    403: ("forbidden", "auth"),
    603: ("forbidden", "auth"),
    404: ("item-not-found", "cancel"),
    604: ("item-not-found", "cancel"),
    405: ("not-allowed", "cancel"),
    488: ("not-acceptable", "cancel"),
    606: ("not-acceptable", "cancel"),
    486: ("service-unavailable", "wait"),
    480: ("service-unavailable", "wait"),
    600: ("service-unavailable", "wait"),
}


class ConditionTests(SynchronousTestCase):
    """
    L{Condition}, L{ErrorType} and the RFC 6120 section 8.3.3 types.
    """

    def test_conditions(self) -> None:
        """
        The 22 conditions of RFC 6120 section 8.3.3, spelled as elements.
        """
        self.assertEqual({c.value for c in Condition}, set(RFC6120_TYPES))

    def test_errorTypes(self) -> None:
        """
        The five error types of RFC 6120 section 8.3.2.
        """
        self.assertEqual(
            {t.value for t in ErrorType},
            {"auth", "cancel", "continue", "modify", "wait"},
        )

    def test_typeOfEveryCondition(self) -> None:
        """
        Every condition has the type RFC 6120 section 8.3.3 gives it.
        """
        for name, expected in RFC6120_TYPES.items():
            self.assertEqual((name, errorTypeFor(name)), (name, expected))
        self.assertEqual(len(errors.ERROR_TYPES), 22)

    def test_unknownCondition(self) -> None:
        """
        A condition RFC 6120 does not define is undefined-condition (RFC 6120
        section 8.3.2).
        """
        self.assertIs(asCondition("payment-required"), Condition.UNDEFINED_CONDITION)
        self.assertIs(asCondition("conflict"), Condition.CONFLICT)
        self.assertEqual(errorTypeFor("no-such-thing"), "cancel")

    def test_stringEquality(self) -> None:
        """
        Members compare equal to the element names other code uses.
        """
        self.assertEqual(Condition.ITEM_NOT_FOUND, "item-not-found")
        self.assertEqual(ErrorType.WAIT, "wait")

    def test_immutable(self) -> None:
        """
        The tables are read-only mappings.
        """
        for table in (
            errors.ERROR_TYPES,
            errors.SIP_STATUS_FOR_CONDITION,
            errors.SIP_STATUS_FOR_CONDITION_BARE_JID,
            errors.CONDITION_FOR_SIP_STATUS,
            errors.CONDITION_FOR_SIP_CLASS,
            errors.ALTERNATIVE_CONDITIONS_FOR_SIP_STATUS,
            errors.STANZA_ERROR_FOR_MSRP_STATUS,
            errors.CONDITION_FOR_MSRP_CLASS,
            errors.MSRP_STATUS_FOR_EXCHANGE_CONDITION,
            errors.MSRP_STATUS_FOR_CONDITION,
            errors.MSRP_STATUS_FOR_LOCAL_FAILURE,
            errors.SIP_STATUS_FOR_MUC_ENTRY_ERROR,
            errors.CONDITION_FOR_SIP_ENTRY_FAILURE,
            stanzas.MUC_ERROR_TYPES,
            errors.SIP_REASON_CAUSE_FOR_MUC_REMOVAL,
            errors.DISCONNECTION_METHOD_FOR_MUC_REMOVAL,
            errors.MUC_STATUS_FOR_TERMINATION,
            errors.MUC_STATUS_FOR_DISCONNECTION_METHOD,
            errors.MSRP_STATUS_PHRASES,
        ):
            self.assertIsInstance(table, MappingProxyType)
        frozen: Any = errors.ERROR_TYPES
        with self.assertRaises(TypeError):
            frozen[Condition.GONE] = ErrorType.WAIT


class StanzaErrorToSIPTests(SynchronousTestCase):
    """
    SPEC E.1, RFC 7247 section 7.1 (R-108, R-109, R-110).
    """

    def test_everyRowFullJID(self) -> None:
        """
        E.1, every row: the full-JID (4xx/405) or only status.
        """
        for name, (full, _) in E1_ROWS.items():
            self.assertEqual((name, sipStatusForStanzaError(name)), (name, full))
        self.assertEqual(set(errors.SIP_STATUS_FOR_CONDITION), set(E1_ROWS))

    def test_everyRowBareJID(self) -> None:
        """
        E.1, every row: the bare-JID status (501/6xx, notes 1 and 2).
        """
        for name, (_, bare) in E1_ROWS.items():
            self.assertEqual(
                (name, sipStatusForStanzaError(name, bareJID=True)), (name, bare)
            )

    def test_goneWithAddress(self) -> None:
        """
        R-109: gone with a new address is 301, without one 410.
        """
        self.assertEqual(sipStatusForStanzaError("gone", newAddress=True), 301)
        self.assertEqual(sipStatusForStanzaError("gone", newAddress=False), 410)
        self.assertEqual(
            sipStatusForStanzaError("gone", newAddress=True, bareJID=True), 301
        )

    def test_newAddressOnlyForGone(self) -> None:
        """
        C{newAddress} changes nothing for other conditions (a redirect is
        always 302).
        """
        self.assertEqual(sipStatusForStanzaError("redirect", newAddress=True), 302)

    def test_remoteServerNotFound(self) -> None:
        """
        RFC 7247 note 4: 404 for a server that does not exist, 408 for one
        that cannot be resolved.
        """
        self.assertEqual(sipStatusForStanzaError("remote-server-not-found"), 404)
        self.assertEqual(
            sipStatusForStanzaError("remote-server-not-found", unresolvable=True),
            408,
        )
        self.assertEqual(
            sipStatusForStanzaError("remote-server-timeout", unresolvable=True), 408
        )

    def test_serviceUnavailableNever503(self) -> None:
        """
        R-110: service-unavailable is 403 or 405, never 503, whatever the
        target; no condition maps to 503 at all.
        """
        for bare in (False, True):
            self.assertIn(
                sipStatusForStanzaError("service-unavailable", bareJID=bare),
                (403, 405),
            )
        for condition in Condition:
            for bare in (False, True):
                self.assertNotEqual(
                    sipStatusForStanzaError(condition, bareJID=bare), 503
                )

    def test_unknownCondition(self) -> None:
        """
        An unknown condition is undefined-condition: 400.
        """
        self.assertEqual(sipStatusForStanzaError("payment-required"), 400)
        self.assertEqual(sipStatusForStanzaError(""), 400)

    def test_enumInput(self) -> None:
        """
        L{Condition} members work as well as names.
        """
        self.assertEqual(sipStatusForStanzaError(Condition.NOT_AUTHORIZED), 401)


class SIPToStanzaErrorTests(SynchronousTestCase):
    """
    SPEC E.2, RFC 7247 section 7.2 (R-111, R-112).
    """

    def test_everyRow(self) -> None:
        """
        E.2, every listed status, with the RFC 6120 type of its condition.
        """
        for status, name in E2_ROWS.items():
            self.assertEqual(
                (status, stanzaErrorForSIPStatus(status)),
                (status, (name, RFC6120_TYPES[name])),
            )
        self.assertEqual(set(errors.CONDITION_FOR_SIP_STATUS), set(E2_ROWS))

    def test_classFallbacks(self) -> None:
        """
        R-111: unlisted 3xx redirect, 4xx bad-request (e.g. 499), 5xx
        internal-server-error, 6xx recipient-unavailable.
        """
        expected = {
            303: ("redirect", "modify"),
            399: ("redirect", "modify"),
            409: ("bad-request", "modify"),
            422: ("bad-request", "modify"),
            499: ("bad-request", "modify"),
            580: ("internal-server-error", "cancel"),
            599: ("internal-server-error", "cancel"),
            607: ("recipient-unavailable", "wait"),
            699: ("recipient-unavailable", "wait"),
        }
        for status, row in expected.items():
            self.assertNotIn(status, E2_ROWS)
            self.assertEqual((status, stanzaErrorForSIPStatus(status)), (status, row))

    def test_noMappingForProvisionalOrSuccess(self) -> None:
        """
        R-114: 1xx and 2xx have no XMPP equivalent; nor has a number that is
        not a status.
        """
        for status in (100, 180, 183, 200, 202, 299, 0, 99, 700, 1000, -403):
            self.assertRaises(ValueError, stanzaErrorForSIPStatus, status)

    def test_goneAddress(self) -> None:
        """
        R-112: 301's C{<gone/>} carries the new address, 410's does not.
        """
        self.assertTrue(goneCarriesAddress(301))
        self.assertFalse(goneCarriesAddress(410))
        self.assertFalse(goneCarriesAddress(302))

    def test_alternatives(self) -> None:
        """
        RFC 7247 section 7.2 notes 3-5: the other translations allowed for
        403, 404 and 408.
        """
        self.assertEqual(
            dict(errors.ALTERNATIVE_CONDITIONS_FOR_SIP_STATUS),
            {
                403: ("not-allowed", "policy-violation"),
                404: ("remote-server-not-found",),
                408: ("remote-server-not-found",),
            },
        )


class RoundTripTests(SynchronousTestCase):
    """
    Where RFC 7247 defines both directions, XMPP -> SIP -> XMPP comes back
    to the same condition, except where the tables are knowingly
    asymmetric.
    """

    #: Conditions that do not survive the round trip, and what they become:
    #: SIP has no code of their own (RFC 7247 Table 2 folds them into 400,
    #: 403 or 500; 480/600 and 603 are recipient-unavailable in Table 3).
    LOSSY = {
        ("conflict", False): "bad-request",
        ("jid-malformed", False): "bad-request",
        ("subscription-required", False): "bad-request",
        ("undefined-condition", False): "bad-request",
        ("not-allowed", False): "forbidden",
        ("policy-violation", False): "forbidden",
        ("service-unavailable", False): "forbidden",
        ("resource-constraint", False): "internal-server-error",
        ("remote-server-not-found", False): "item-not-found",
        ("conflict", True): "bad-request",
        ("jid-malformed", True): "bad-request",
        ("subscription-required", True): "bad-request",
        ("undefined-condition", True): "bad-request",
        ("not-allowed", True): "forbidden",
        ("policy-violation", True): "forbidden",
        ("service-unavailable", True): "forbidden",
        ("resource-constraint", True): "internal-server-error",
        ("remote-server-not-found", True): "item-not-found",
        ("forbidden", True): "recipient-unavailable",
    }

    def test_xmppSIPXMPP(self) -> None:
        """
        Every condition, full and bare JID.
        """
        for condition in Condition:
            for bare in (False, True):
                status = sipStatusForStanzaError(condition, bareJID=bare)
                back, _ = stanzaErrorForSIPStatus(status)
                expected = self.LOSSY.get((condition.value, bare), condition.value)
                self.assertEqual(
                    (condition.value, bare, back), (condition.value, bare, expected)
                )

    def test_gone(self) -> None:
        """
        R-109/R-112: gone with an address -> 301 -> gone with an address;
        without -> 410 -> gone without.
        """
        for withAddress in (True, False):
            status = sipStatusForStanzaError("gone", newAddress=withAddress)
            self.assertEqual(stanzaErrorForSIPStatus(status)[0], "gone")
            self.assertEqual(goneCarriesAddress(status), withAddress)

    def test_sipXMPPSIP(self) -> None:
        """
        SIP -> XMPP -> SIP keeps the codes whose condition maps back to them.
        """
        for status in (302, 400, 401, 403, 404, 405, 406, 407, 408, 410, 480, 491, 500):
            condition, _ = stanzaErrorForSIPStatus(status)
            self.assertEqual(
                (status, sipStatusForStanzaError(condition)), (status, status)
            )
        for status in (501, 604, 606, 600):
            condition, _ = stanzaErrorForSIPStatus(status)
            self.assertEqual(
                (status, sipStatusForStanzaError(condition, bareJID=True)),
                (status, status),
            )


class MSRPToStanzaErrorTests(SynchronousTestCase):
    """
    SPEC E.3, Gateway A.
    """

    def test_everyRow(self) -> None:
        """
        E.3, every row.
        """
        for (code, method), row in E3_ROWS.items():
            self.assertEqual(
                (code, method, stanzaErrorForMSRPStatus(code, MSRPMethod(method))),
                (code, method, row),
            )

    def test_defaultMethodIsSend(self) -> None:
        """
        Without a method the response answers a SEND (also a failure
        REPORT's C{000 <code>}).
        """
        self.assertEqual(stanzaErrorForMSRPStatus(403), ("forbidden", "auth"))
        self.assertEqual(stanzaErrorForMSRPStatus(404), ("item-not-found", "cancel"))

    def test_methodMatters(self) -> None:
        """
        403 to a NICKNAME (nicknames not allowed) is not-acceptable; to a
        SEND forbidden.
        """
        self.assertNotEqual(
            stanzaErrorForMSRPStatus(403, MSRPMethod.NICKNAME),
            stanzaErrorForMSRPStatus(403, MSRPMethod.SEND),
        )

    def test_classFallbacks(self) -> None:
        """
        Codes without a row fall back by class: 4xx bad-request, 5xx
        internal-server-error (including 481, whose session exit is decided
        by L{msrpStatusEndsSession}).
        """
        self.assertEqual(stanzaErrorForMSRPStatus(423), ("bad-request", "modify"))
        self.assertEqual(
            stanzaErrorForMSRPStatus(425, MSRPMethod.SEND), ("bad-request", "modify")
        )
        self.assertEqual(stanzaErrorForMSRPStatus(481), ("bad-request", "modify"))
        self.assertEqual(
            stanzaErrorForMSRPStatus(501, MSRPMethod.SEND),
            ("internal-server-error", "cancel"),
        )

    def test_notAFailure(self) -> None:
        """
        200 and non-codes are not translated.
        """
        for code in (200, 0, 100, 600, 999):
            self.assertRaises(ValueError, stanzaErrorForMSRPStatus, code)

    def test_sessionEnding(self) -> None:
        """
        E.3 / R-218: 481 ends the session; 506 and the others do not.
        """
        self.assertTrue(msrpStatusEndsSession(481))
        for code in (400, 403, 408, 413, 506):
            self.assertFalse(msrpStatusEndsSession(code))

    def test_localTimeout(self) -> None:
        """
        A local timeout (no 200 in 30 s) maps like 408.
        """
        self.assertEqual(errors.MSRP_STATUS_LOCAL_TIMEOUT, 408)
        self.assertEqual(
            stanzaErrorForMSRPStatus(errors.MSRP_STATUS_LOCAL_TIMEOUT),
            ("remote-server-timeout", "wait"),
        )


class StanzaErrorToMSRPTests(SynchronousTestCase):
    """
    SPEC E.4, Gateway B.
    """

    def test_everyRow(self) -> None:
        """
        E.4, every MUC-answer row.
        """
        for (name, exchange), code in E4_ROWS.items():
            self.assertEqual(
                (name, exchange, msrpStatusForStanzaError(name, MUCExchange(exchange))),
                (name, exchange, code),
            )

    def test_localRows(self) -> None:
        """
        E.4, every local row.
        """
        self.assertEqual({f.name for f in LocalMSRPFailure}, set(E4_LOCAL_ROWS))
        for name, code in E4_LOCAL_ROWS.items():
            self.assertEqual(
                (name, msrpStatusForLocalFailure(LocalMSRPFailure[name])), (name, code)
            )

    def test_fallback(self) -> None:
        """
        Conditions without a row, and unknown ones, give 403.
        """
        self.assertEqual(msrpStatusForStanzaError("gone"), 403)
        self.assertEqual(msrpStatusForStanzaError("registration-required"), 403)
        self.assertEqual(msrpStatusForStanzaError("x-unknown"), 403)
        self.assertEqual(
            msrpStatusForStanzaError("item-not-found", MUCExchange.GROUPCHAT), 403
        )

    def test_noFiveHundreds(self) -> None:
        """
        No condition becomes an MSRP 5xx (cf. RFC 7247 note 5).
        """
        for condition in Condition:
            for exchange in MUCExchange:
                self.assertLess(msrpStatusForStanzaError(condition, exchange), 500)

    def test_nickConflictRoundTrip(self) -> None:
        """
        RFC 7702 sections 5.6 and 6.4: conflict <-> 425 on a NICKNAME.
        """
        code = msrpStatusForStanzaError("conflict", MUCExchange.NICKNAME)
        self.assertEqual(code, 425)
        self.assertEqual(
            stanzaErrorForMSRPStatus(code, MSRPMethod.NICKNAME)[0], "conflict"
        )


class EntryTests(SynchronousTestCase):
    """
    SPEC E.5, room entry failures (R-209).
    """

    def test_gatewayBEveryRow(self) -> None:
        """
        E.5, "SIP (Gateway B answer)" column.
        """
        for name, status in E5_ENTRY_GATEWAY_B.items():
            self.assertEqual((name, sipStatusForMUCEntryError(name)), (name, status))

    def test_gatewayBNoAuthChallenges(self) -> None:
        """
        SPEC F.1 item 7: no entry error asks the SIP UA for credentials (401
        or 407), and none is 503.
        """
        for condition in Condition:
            self.assertNotIn(sipStatusForMUCEntryError(condition), (401, 407, 503))

    def test_gatewayBOtherConditions(self) -> None:
        """
        Conditions E.5 does not list map as E.1 (full JID).
        """
        self.assertEqual(sipStatusForMUCEntryError("gone"), 410)
        self.assertEqual(sipStatusForMUCEntryError("remote-server-timeout"), 408)
        self.assertEqual(sipStatusForMUCEntryError("internal-server-error"), 500)
        self.assertEqual(sipStatusForMUCEntryError("x-unknown"), 400)

    def test_gatewayAEveryRow(self) -> None:
        """
        E.5, "SIP (seen by Gateway A) -> XMPP" column.
        """
        for status, row in E5_ENTRY_GATEWAY_A.items():
            self.assertEqual(
                (status, stanzaErrorForSIPEntryFailure(status)), (status, row)
            )

    def test_gatewayANickMissing(self) -> None:
        """
        400 is jid-malformed only when the join had no nick.
        """
        self.assertEqual(
            stanzaErrorForSIPEntryFailure(400, nickMissing=True),
            ("jid-malformed", "modify"),
        )
        self.assertEqual(stanzaErrorForSIPEntryFailure(400), ("bad-request", "modify"))
        self.assertEqual(
            stanzaErrorForSIPEntryFailure(404, nickMissing=True),
            ("item-not-found", "cancel"),
        )

    def test_gatewayAOtherStatuses(self) -> None:
        """
        Statuses E.5 does not list map as E.2, with its class fallbacks.
        """
        self.assertEqual(
            stanzaErrorForSIPEntryFailure(408), ("remote-server-timeout", "wait")
        )
        self.assertEqual(
            stanzaErrorForSIPEntryFailure(500), ("internal-server-error", "cancel")
        )
        self.assertEqual(stanzaErrorForSIPEntryFailure(302), ("redirect", "modify"))
        self.assertEqual(stanzaErrorForSIPEntryFailure(499), ("bad-request", "modify"))
        self.assertRaises(ValueError, stanzaErrorForSIPEntryFailure, 200)

    def test_entryRoundTrip(self) -> None:
        """
        Gateway B's answer, read by Gateway A, gives back the MUC condition
        where the SIP code is specific enough.
        """
        for name in ("forbidden", "item-not-found", "service-unavailable"):
            status = sipStatusForMUCEntryError(name)
            self.assertEqual(stanzaErrorForSIPEntryFailure(status)[0], name)
        self.assertEqual(
            stanzaErrorForSIPEntryFailure(
                sipStatusForMUCEntryError("jid-malformed"), nickMissing=True
            )[0],
            "jid-malformed",
        )


class RemovalTests(SynchronousTestCase):
    """
    SPEC E.5, removal and MUC status codes (R-218).
    """

    def test_statusCodes(self) -> None:
        """
        The XEP-0045 codes of E.5.
        """
        self.assertEqual(
            {s.value for s in MUCStatus},
            {100, 110, 170, 201, 210, 301, 303, 307, 321, 322, 332, 333},
        )

    def test_byeReasonForOwnRemoval(self) -> None:
        """
        E.5, Gateway B: 332 -> BYE Reason 503; 301/307/321/322 -> as 307;
        333 -> BYE; a plain leave -> no Reason.
        """
        expected = {
            301: 403,
            307: 403,
            321: 403,
            322: 403,
            332: 503,
            333: 500,
        }
        for code, cause in expected.items():
            self.assertEqual(
                (code, sipReasonCauseForMUCRemoval({110, code})), (code, cause)
            )
        self.assertIsNone(sipReasonCauseForMUCRemoval({110}))
        self.assertIsNone(sipReasonCauseForMUCRemoval([]))
        self.assertIsNone(sipReasonCauseForMUCRemoval({303, 110}))

    def test_disconnectionMethod(self) -> None:
        """
        E.5, Gateway B, other occupants: 301/307/321/322 booted, 333 failed,
        no code departed.
        """
        expected = {
            301: "booted",
            307: "booted",
            321: "booted",
            322: "booted",
            332: "booted",
            333: "failed",
        }
        for code, method in expected.items():
            self.assertEqual(
                (code, disconnectionMethodForMUCRemoval([code]).value), (code, method)
            )
        self.assertEqual(disconnectionMethodForMUCRemoval([]).value, "departed")
        self.assertEqual(disconnectionMethodForMUCRemoval([110, 170]).value, "departed")

    def test_severalCodes(self) -> None:
        """
        A presence with several removal codes: shutdown and technical error
        win over kick/ban.
        """
        self.assertEqual(removalStatus([307, 332]), MUCStatus.SHUTDOWN)
        self.assertEqual(removalStatus((301, 307)), MUCStatus.BANNED)
        self.assertEqual(removalStatus([110, 333, 307]), MUCStatus.TECHNICAL_ERROR)
        self.assertIsNone(removalStatus([999]))

    def test_termination(self) -> None:
        """
        E.5 / R-218, Gateway A: focus BYE -> 307, shutdown -> 332, MSRP 481
        / TCP loss / dialog failure -> 333.
        """
        self.assertEqual(mucStatusForTermination(Termination.FOCUS_BYE), 307)
        self.assertEqual(mucStatusForTermination(Termination.SHUTDOWN), 332)
        self.assertEqual(mucStatusForTermination(Termination.TECHNICAL_FAILURE), 333)

    def test_bye(self) -> None:
        """
        R-218: a BYE with Reason cause 503 is a shutdown (332); any other
        focus BYE a kick (307).
        """
        self.assertEqual(mucStatusForSIPBye(503), 332)
        self.assertEqual(mucStatusForSIPBye(None), 307)
        self.assertEqual(mucStatusForSIPBye(200), 307)
        self.assertEqual(mucStatusForSIPBye(480), 307)
        self.assertEqual(mucStatusForSIPBye(403), 307)
        self.assertEqual(mucStatusForSIPBye(500), 333)

    def test_notifyDeleted(self) -> None:
        """
        E.5, Gateway A: a NOTIFY deleting a user as booted -> 307, failed ->
        333, departed/busy/absent/unknown -> no code.
        """
        self.assertEqual(mucStatusForDisconnectionMethod("booted"), 307)
        self.assertEqual(
            mucStatusForDisconnectionMethod(DisconnectionMethod.FAILED), 333
        )
        for method in ("departed", "busy", None, "exploded"):
            self.assertIsNone(mucStatusForDisconnectionMethod(method))

    def test_removalRoundTrip(self) -> None:
        """
        Gateway B's disconnection-method, read by Gateway A, gives back the
        removal's kind (307 for all bootings, 333 for failures), and its BYE
        Reason gives back 332 for a shutdown, 333 for a technical error.
        """
        for code, back in ((307, 307), (301, 307), (333, 333)):
            method = disconnectionMethodForMUCRemoval([code])
            self.assertEqual(mucStatusForDisconnectionMethod(method), back)
        self.assertEqual(mucStatusForSIPBye(sipReasonCauseForMUCRemoval([332])), 332)
        self.assertEqual(mucStatusForSIPBye(sipReasonCauseForMUCRemoval([307])), 307)
        self.assertEqual(mucStatusForSIPBye(sipReasonCauseForMUCRemoval([333])), 333)


class MSRPStatusCodeTests(SynchronousTestCase):
    """
    SPEC E.8.
    """

    def test_everyRow(self) -> None:
        """
        E.8 lists exactly these codes.
        """
        self.assertEqual(
            set(errors.MSRP_STATUS_PHRASES),
            {200, 400, 403, 404, 408, 413, 415, 423, 424, 425, 428, 481, 501, 506},
        )

    def test_sources(self) -> None:
        """
        E.8: 404, 424, 425 and 428 come from RFC 7701 section 10.3, not RFC
        4975; 423 is not a nickname code.
        """
        for code in (404, 424, 425, 428):
            self.assertIn("7701", errors.MSRP_STATUS_PHRASES[code][1])
        self.assertNotIn("ickname", msrpReasonPhrase(423))

    def test_phrases(self) -> None:
        """
        Known codes have their phrase, others a class phrase.
        """
        self.assertEqual(msrpReasonPhrase(200), "OK")
        self.assertEqual(msrpReasonPhrase(481), "Session Does Not Exist")
        self.assertEqual(msrpReasonPhrase(499), "Request Failed")
        self.assertEqual(msrpReasonPhrase(599), "Server Failure")
        self.assertEqual(msrpReasonPhrase(42), "Unknown")

    def test_everyUsedCodeListed(self) -> None:
        """
        Every MSRP code E.3 and E.4 use is in E.8.
        """
        used = {code for code, _ in errors.STANZA_ERROR_FOR_MSRP_STATUS}
        used |= set(errors.MSRP_STATUS_FOR_EXCHANGE_CONDITION.values())
        used |= set(errors.MSRP_STATUS_FOR_CONDITION.values())
        used |= set(errors.MSRP_STATUS_FOR_LOCAL_FAILURE.values())
        used |= errors.MSRP_STATUSES_ENDING_SESSION
        self.assertLessEqual(used, set(errors.MSRP_STATUS_PHRASES))
