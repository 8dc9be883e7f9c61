# -*- test-case-name: tests.tools.test_chat -*-
"""
C{stoxgw-chat}: the command-line SIP/MSRP chat client (reserved).

The client that joins rooms through the gateway as a SIP/MSRP user arrives
with the interworking issue.  Until then the command says so and exits 1,
rather than pretending to connect.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

NOT_YET = "stoxgw-chat: the SIP/MSRP chat client is not implemented in this version of stoxgw\n"


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of C{stoxgw-chat}: reports that the client is not built yet.
    """
    sys.stderr.write(NOT_YET)
    sys.exit(1)
