# -*- test-case-name: tests.formats -*-
"""
The bodies SIP and MSRP carry, parsed and serialized without I/O: CPIM
(L{stoxgw.formats.cpim}), conference-info (L{stoxgw.formats.conferenceinfo}),
isComposing (L{stoxgw.formats.iscomposing}), and the HTTP digest formula
that the SIP and MSRP sides share (L{stoxgw.formats.digest}).  Level 1 of
docs/design.md "Layers": standard library only.
"""
