# -*- test-case-name: tests.tools -*-
"""
Command-line tools installed with the package: C{stoxgw-chat}, a SIP/MSRP
chat client (L{stoxgw.tools.chat}).  Level 5 of docs/design.md "Layers":
built on the SIP, MSRP and chat session layers.
"""
