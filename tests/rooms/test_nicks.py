# -*- test-case-name: tests.rooms.test_nicks -*-
"""
Tests for L{stoxgw.rooms.nicks}: RFC 7700 preparation, enforcement and
comparison of nicknames (R-045, R-083).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.rooms.nicks import (
    MAX_NICK_OCTETS,
    InvalidNickname,
    comparisonKey,
    enforce,
    nicksEqual,
    prepare,
)


class ComparisonTests(SynchronousTestCase):
    """
    RFC 7700 section 3, Table 1: the output for comparison of the sample
    nicknames.
    """

    def test_table1(self) -> None:
        """
        Every row of RFC 7700 Table 1 (R-045).
        """
        rows = [
            ("Foo", "foo"),
            ("foo", "foo"),
            ("Foo Bar", "foo bar"),
            ("foo bar", "foo bar"),
            ("\u03a3", "\u03c3"),
            ("\u03c3", "\u03c3"),
            ("\u03c2", "\u03c3"),
            ("\u265a", "\u265a"),
            ("Richard \u2163", "richard iv"),
        ]
        for nick, expected in rows:
            self.assertEqual(comparisonKey(nick), expected, nick)

    def test_equalVariants(self) -> None:
        """
        Case, width and space variants of one nickname are equal (RFC 7700
        section 2.4; R-045's test: "case/width variants judged equal").
        """
        self.assertTrue(nicksEqual("JuliC", "julic"))
        self.assertTrue(
            nicksEqual("\uff2a\uff55\uff4c\uff49\uff23", "JuliC")
        )  # fullwidth
        self.assertTrue(nicksEqual("  St\u00a0\u3000Peter ", "st peter"))
        self.assertTrue(nicksEqual("Stra\u00dfe", "STRASSE"))  # full case folding
        self.assertFalse(nicksEqual("Romeo", "Juliet"))
        self.assertFalse(nicksEqual("Romeo", ""))

    def test_comparisonOfInvalid(self) -> None:
        """
        An invalid nickname has no comparison key and equals nothing.
        """
        self.assertRaises(InvalidNickname, comparisonKey, "   ")
        self.assertFalse(nicksEqual("a\x07", "a\x07"))


class EnforcementTests(SynchronousTestCase):
    """
    RFC 7700 section 2.3: Additional Mapping, NFKC, non-empty; case kept.
    """

    def test_spacesMapped(self) -> None:
        """
        Non-ASCII spaces become U+0020, leading and trailing spaces go,
        interior runs collapse (section 2.1 rule 2).
        """
        self.assertEqual(enforce("stpeter "), "stpeter")
        self.assertEqual(enforce("St  Peter"), "St Peter")
        self.assertEqual(enforce("\u2003St\u00a0Peter\u202f"), "St Peter")

    def test_caseKept(self) -> None:
        """
        Enforcement does not case-map: the room shows the nick as chosen.
        """
        self.assertEqual(enforce("JuliC"), "JuliC")

    def test_nfkc(self) -> None:
        """
        Width and compatibility forms are normalized (section 2.1 rules 1
        and 4).
        """
        self.assertEqual(enforce("\uff2a\uff55\uff4c\uff49"), "Juli")
        self.assertEqual(enforce("Richard \u2163"), "Richard IV")
        self.assertEqual(enforce("Cafe\u0301"), "Caf\u00e9")

    def test_symbolsAllowed(self) -> None:
        """
        FreeformClass allows symbols and punctuation (RFC 7700 example 8).
        """
        self.assertEqual(enforce("\u265a King!"), "\u265a King!")

    def test_empty(self) -> None:
        """
        A nickname that is empty, or only spaces, is refused (section 2.3;
        XEP-0045 section 7.2: roomnicks must not be only spaces).
        """
        for nick in ("", " ", "\u3000\u00a0"):
            e = self.assertRaises(InvalidNickname, enforce, nick)
            self.assertIn("empty", e.reason)
            self.assertEqual(e.nick, nick)

    def test_disallowed(self) -> None:
        """
        Control characters, unassigned and private-use code points,
        noncharacters, default ignorables and old Hangul jamo are not in the
        FreeformClass (RFC 7564 section 4.3).
        """
        for nick, words in [
            ("a\x00b", "control"),
            ("a\tb", "control"),
            ("a\x7fb", "control"),
            ("a\u0378b", "unassigned"),
            ("a\ue000b", "private use"),
            ("a\ufdd0b", "noncharacter"),
            ("a\U0010fffeb", "noncharacter"),
            ("a\u200bb", "ignorable"),
            ("a\u00adb", "ignorable"),
            ("a\ufe0fb", "ignorable"),
            ("\u1100\u1161", "Hangul"),
            ("a\u200db", "virama"),
        ]:
            e = self.assertRaises(InvalidNickname, enforce, nick)
            self.assertIn(words, e.reason, nick)
            self.assertIn("invalid nickname", str(e))

    def test_joinerAfterVirama(self) -> None:
        """
        ZWJ is allowed after a virama (CONTEXTJ, RFC 5892 appendix A.2).
        """
        nick = "\u0915\u094d\u200d\u0937"
        self.assertEqual(prepare(nick), nick)
        self.assertEqual(enforce(nick), nick)

    def test_length(self) -> None:
        """
        At most 1023 octets of UTF-8 (resourcepart, MSRP Use-Nickname).
        """
        self.assertEqual(len(enforce("a" * MAX_NICK_OCTETS)), MAX_NICK_OCTETS)
        self.assertRaises(InvalidNickname, enforce, "a" * (MAX_NICK_OCTETS + 1))
        self.assertRaises(InvalidNickname, enforce, "\u00e9" * 512)

    def test_isValueError(self) -> None:
        """
        L{InvalidNickname} is a L{ValueError}.
        """
        self.assertTrue(issubclass(InvalidNickname, ValueError))
