# -*- test-case-name: tests.focus -*-
"""
stoxgw.focus: native SIP chat rooms.

The gateway itself hosts RFC 7701 chat rooms on a configured SIP domain
(C{[rooms] domain}): it is the conference focus (RFC 4579) and the MSRP
switch of each room.  L{stoxgw.focus.room} holds the room logic (members,
nicknames, distribution, history, the conference event package);
L{stoxgw.focus.focus} the rooms of the domain and their SIP side (INVITE,
REFER and dial-out, SUBSCRIBE); L{stoxgw.focus.routing} shares the UA's
INVITE, REFER and conference handlers between the focus and the RFC 7702
section 6 bridge.

Level 4 like C{stoxgw.interworking} (docs/design.md "Layers"), but SIP-only:
it never imports C{stoxgw.xmpp} or C{stoxgw.interworking}
(C{tests/test_layers.py}); XMPP users reach these rooms through the
gateway's own RFC 7702 section 5 side, over SIP (docs/native-rooms.md).
"""
