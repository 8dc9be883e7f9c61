# -*- test-case-name: tests.xmpp -*-
"""
The XMPP side of the gateway: XEP-0114 component links and the wokkel
handlers for MUC (occupant and room side) and service discovery.

L{stoxgw.xmpp._compat} is imported first, before anything imports wokkel.
"""

from stoxgw.xmpp import _compat as _compat  # noqa: F401  (must come first)
