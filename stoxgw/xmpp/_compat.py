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
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import constantly
from twisted.python import compat

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


def install() -> None:
    """
    Set the names; idempotent.
    """
    for name, value in _NAMES.items():
        setattr(compat, name, value)
    if "twisted.python.constants" not in sys.modules:
        sys.modules["twisted.python.constants"] = constantly
        import twisted.python

        setattr(twisted.python, "constants", constantly)


install()

__all__ = ["install"]
