# -*- test-case-name: tests.formats -*-
"""
The bodies SIP and MSRP carry, parsed and serialized without I/O: CPIM
(L{stoxgw.formats.cpim}), conference-info (L{stoxgw.formats.conferenceinfo}),
isComposing (L{stoxgw.formats.iscomposing}), and what the SIP and MSRP
sides share: the HTTP digest formula (L{stoxgw.formats.digest}) and
C{host [":" port]} with IP address literals (L{stoxgw.formats.hostport}).
Level 1 of docs/design.md "Layers": standard library only.
"""
