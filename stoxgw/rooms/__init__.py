# -*- test-case-name: tests.rooms -*-
"""
The neutral room model both directions and the native rooms use: a room's
roster, subject and bounded history (L{stoxgw.rooms.model}) and RFC 7700
nicknames (L{stoxgw.rooms.nicks}).  Level 1 of docs/design.md "Layers":
plain data and rules, standard library only.
"""
