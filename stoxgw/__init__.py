# -*- test-case-name: tests.test_layers -*-
"""
stoxgw: a SIP/MSRP <-> XMPP groupchat gateway (RFC 7702).

The package is layered (see docs/design.md): wire formats and models at the
bottom, the SIP, MSRP and XMPP protocols above them, chat sessions above
those, and the interworking layer on top.  L{stoxgw.service} wires the
parts into a Twisted service tree; L{stoxgw.tap} is the twistd plugin.
"""

__version__ = "0.1.0.dev0"
