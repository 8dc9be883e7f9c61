# -*- test-case-name: tests.rooms.test_nicks -*-
"""
Nicknames per RFC 7700 (the PRECIS Nickname profile of the FreeformClass).

RFC 7702 section 7 says both sides of the gateway SHOULD prepare and compare
nicknames this way (R-045); RFC 7701 section 7.1 makes it a MUST for the
switch (R-083).  Three operations (RFC 7700 section 2):

  - L{prepare}: the string only holds FreeformClass code points (2.2).
  - L{enforce}: L{prepare}, then the Additional Mapping Rule (non-ASCII
    spaces to U+0020, trim, collapse) and NFKC; the result must not be empty
    (2.3).  This is the form a room stores and shows.
  - L{comparisonKey}: L{prepare}, Additional Mapping, Unicode Default Case
    Folding, NFKC (2.4); two nicknames are the same nickname when their keys
    are equal (L{nicksEqual}).

Simplifications (documented, sans a full RFC 5892 derived-property table):
the FreeformClass check rejects what RFC 7564 section 4.3 marks DISALLOWED
for it and what matters in practice - control characters (Cc), surrogates
(Cs), private use (Co), unassigned code points (Cn, as of the Python's
Unicode database), noncharacters, default-ignorable code points (format
characters Cf and the variation selectors and fillers listed below), and old
Hangul jamo (conjoining L/V/T jamo) - and it allows the CONTEXTJ joiners
ZWNJ/ZWJ only right after a virama (canonical combining class 9).  CONTEXTO
rules (e.g. the middle dot, Greek keraia) are not checked.  Python's
L{str.casefold} is full Unicode Default Case Folding.

Sans-IO: standard library only.
"""

from __future__ import annotations

import unicodedata

#: A nickname must fit a resourcepart (RFC 7622 section 3.4: 1023 octets),
#: and an MSRP C{Use-Nickname} value (RFC 7701 section 7.1: 1-1023 octets).
MAX_NICK_OCTETS = 1023

_SPACE = " "

#: Zero width non-joiner and joiner: CONTEXTJ (RFC 5892 appendix A.1/A.2).
_JOINERS = frozenset({"\u200c", "\u200d"})

#: Default-ignorable code points that are not format characters (Cf):
#: combining grapheme joiner, Hangul fillers, Khmer inherent vowels,
#: Mongolian free variation selectors, variation selectors.
_IGNORABLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0000, 0xE0FFF),
)

#: Old Hangul jamo (RFC 5892 section 2.9: Hangul_Syllable_Type L, V or T).
_OLD_HANGUL_JAMO: tuple[tuple[int, int], ...] = (
    (0x1100, 0x11FF),
    (0xA960, 0xA97F),
    (0xD7B0, 0xD7FF),
)


class InvalidNickname(ValueError):
    """
    A string is not a valid nickname under RFC 7700.

    The XMPP side answers it with C{<jid-malformed/>}, the MSRP side with
    424 (RFC 7701 section 7.1).

    @ivar nick: the offending string.
    @ivar reason: why, in English.
    """

    def __init__(self, nick: str, reason: str) -> None:
        super().__init__(f"invalid nickname {nick!r}: {reason}")
        self.nick = nick
        self.reason = reason


def _inRanges(codePoint: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= codePoint <= high for low, high in ranges)


def _isNoncharacter(codePoint: int) -> bool:
    return 0xFDD0 <= codePoint <= 0xFDEF or (codePoint & 0xFFFE) == 0xFFFE


def _disallowed(text: str, index: int) -> str | None:
    """
    @return: why the code point at C{index} is not in the FreeformClass, or
        L{None} if it is.
    """
    char = text[index]
    codePoint = ord(char)
    category = unicodedata.category(char)
    if char in _JOINERS:
        if index > 0 and unicodedata.combining(text[index - 1]) == 9:
            return None
        return f"U+{codePoint:04X} (joiner) is only allowed after a virama"
    if category == "Cc":
        return f"U+{codePoint:04X} is a control character"
    if category == "Cs":
        return f"U+{codePoint:04X} is a surrogate"
    if category == "Co":
        return f"U+{codePoint:04X} is a private use character"
    if _isNoncharacter(codePoint):
        return f"U+{codePoint:04X} is a noncharacter"
    if category == "Cn":
        return f"U+{codePoint:04X} is unassigned"
    if category == "Cf" or _inRanges(codePoint, _IGNORABLE_RANGES):
        return f"U+{codePoint:04X} is a default-ignorable code point"
    if _inRanges(codePoint, _OLD_HANGUL_JAMO):
        return f"U+{codePoint:04X} is an old Hangul jamo"
    return None


def prepare(nick: str) -> str:
    """
    RFC 7700 section 2.2: check that C{nick} consists only of FreeformClass
    code points (and can be encoded as UTF-8).

    @return: C{nick} unchanged.
    @raise InvalidNickname: it does not.
    """
    for index in range(len(nick)):
        reason = _disallowed(nick, index)
        if reason is not None:
            raise InvalidNickname(nick, reason)
    return nick


def _mapSpaces(nick: str) -> str:
    """
    The Additional Mapping Rule (RFC 7700 section 2.1 rule 2): every Zs code
    point becomes U+0020, leading and trailing spaces go, interior runs of
    spaces become one.
    """
    mapped = "".join(
        _SPACE if unicodedata.category(char) == "Zs" else char for char in nick
    )
    return _SPACE.join(part for part in mapped.split(_SPACE) if part)


def enforce(nick: str) -> str:
    """
    RFC 7700 section 2.3: the nickname as a room stores and shows it.

    @raise InvalidNickname: C{nick} holds disallowed code points, is empty
        after the mapping (for instance only spaces; XEP-0045 section 7.2
        forbids such roomnicks too), or is longer than L{MAX_NICK_OCTETS}
        octets of UTF-8.
    """
    prepare(nick)
    enforced = unicodedata.normalize("NFKC", _mapSpaces(nick))
    if not enforced:
        raise InvalidNickname(nick, "empty after RFC 7700 enforcement")
    # NFKC can produce code points the input did not have; check again.
    prepare(enforced)
    if len(enforced.encode("utf-8")) > MAX_NICK_OCTETS:
        raise InvalidNickname(nick, f"longer than {MAX_NICK_OCTETS} octets")
    return enforced


def comparisonKey(nick: str) -> str:
    """
    RFC 7700 section 2.4: the string two nicknames are compared by, octet
    for octet.

    @raise InvalidNickname: C{nick} holds disallowed code points or is
        empty after the mapping.
    """
    prepare(nick)
    key = unicodedata.normalize("NFKC", _mapSpaces(nick).casefold())
    if not key:
        raise InvalidNickname(nick, "empty after RFC 7700 comparison mapping")
    return key


def nicksEqual(first: str, second: str) -> bool:
    """
    Whether two nicknames are the same under RFC 7700 section 2.4; an
    invalid nickname equals nothing.
    """
    try:
        return comparisonKey(first) == comparisonKey(second)
    except InvalidNickname:
        return False


__all__ = [
    "MAX_NICK_OCTETS",
    "InvalidNickname",
    "comparisonKey",
    "enforce",
    "nicksEqual",
    "prepare",
]
