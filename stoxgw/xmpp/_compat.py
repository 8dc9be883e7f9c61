# -*- test-case-name: tests.xmpp.test_compat -*-
"""
Restore the names wokkel 18.0.0 imports from Twisted releases before 21.2.

wokkel's last release still imports C{_PY3}, C{unicode}, C{iteritems},
C{itervalues} and C{StringType} from L{twisted.python.compat} and the module
C{twisted.python.constants}.  Twisted has removed C{_PY3} and C{constants} and
deprecated the rest (calling its C{iteritems} now warns, which breaks wokkel's
own tests of its warnings).  This module sets exactly those names, with their
plain Python 3 meanings (C{constants} from the C{constantly} package, which
is where Twisted moved it), and nothing else.
It must be imported before any wokkel module: L{stoxgw.xmpp} does so first.

It also bounds Twisted's JID intern table (L{twisted.words.protocols.jabber.jid.internJID},
which wokkel calls for the C{from} and C{to} of every stanza it parses): that
table never forgets, and every SIP session brings JIDs never seen before (a
random resource, an occupant nick), so a long-running gateway would grow by
about 0.5 KB per session for ever (W8, bench/README.md).  The oldest entries
are forgotten past L{INTERN_MAX}; interning only saves parsing again.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import constantly
from twisted.python import compat
from twisted.words.protocols.jabber import jid

_K = TypeVar("_K")
_V = TypeVar("_V")


def _iteritems(d: Mapping[_K, _V]) -> Iterator[tuple[_K, _V]]:
    return iter(d.items())


def _itervalues(d: Mapping[_K, _V]) -> Iterator[_V]:
    return iter(d.values())


_NAMES: dict[str, Any] = {
    "_PY3": True,
    "unicode": str,
    "iteritems": _iteritems,
    "itervalues": _itervalues,
    "StringType": str,
}


#: How many JIDs Twisted's intern table keeps.
INTERN_MAX = 4096


class _BoundedInternTable(OrderedDict[str, Any]):
    """
    Twisted's JID intern table, forgetting the oldest entry past
    L{INTERN_MAX}.
    """

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > INTERN_MAX:
            self.popitem(last=False)


def install() -> None:
    """
    Set the names and bound the JID intern table; idempotent.
    """
    for name, value in _NAMES.items():
        setattr(compat, name, value)
    table = getattr(jid, "__internJIDs")
    if not isinstance(table, _BoundedInternTable):
        setattr(jid, "__internJIDs", _BoundedInternTable(table))
    if "twisted.python.constants" not in sys.modules:
        sys.modules["twisted.python.constants"] = constantly
        import twisted.python

        setattr(twisted.python, "constants", constantly)


install()

__all__ = ["install"]
