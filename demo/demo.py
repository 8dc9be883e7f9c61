"""
C{make demo}: a private Prosody on 127.0.0.1 and the gateway beside it.

What this version can show: the gateway started as C{twistd -n stoxgw}, its
XEP-0114 component links for the SIP-user domain and the room domain coming
up in its log, and both processes stopping cleanly.  The conversation between
a SIP user and an XMPP user comes with the interworking issue.
"""

from __future__ import annotations

import os
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from tests.interop.gateway import Gateway  # noqa: E402
from tests.interop.peers import Prosody, freePort, freeUDPAndTCPPort  # noqa: E402


def main() -> int:
    directory = tempfile.mkdtemp(prefix="stoxgw-demo-")
    prosody = Prosody(components=("sip.xmpp.test", "chat.sip.xmpp.test"), directory=os.path.join(directory, "prosody"))
    print(f"demo: starting Prosody (XMPP domain xmpp.test, MUC muc.xmpp.test) in {prosody.directory}")
    prosody.start()
    config = os.path.join(directory, "stoxgw.conf")
    sipPort = freeUDPAndTCPPort()
    with open(config, "w") as f:
        f.write(
            "[xmpp]\n"
            f"port = {prosody.componentPort}\n"
            "user_domain = sip.xmpp.test\n"
            "room_domain = chat.sip.xmpp.test\n"
            f"secret = {prosody.secret}\n"
            "[msrp]\n"
            f"port = {freePort()}\n"
            "[sip]\n"
            f"udp_port = {sipPort}\n"
            f"tcp_port = {sipPort}\n"
        )
    gateway = Gateway(config, directory)
    print(f"demo: starting the gateway: twistd -n stoxgw --config {config}")
    gateway.start()
    try:
        gateway.waitFor("XMPP component link up:", count=2)
    except AssertionError as e:
        print(f"demo: FAILED: {e}")
        gateway.stop()
        prosody.stop()
        return 1
    print("demo: gateway log:")
    for line in gateway.output().splitlines():
        print("    " + line)
    print("demo: stopping the gateway and Prosody")
    gateway.stop()
    prosody.stop()
    print("demo: the gateway's component links came up and everything stopped cleanly.")
    print("demo: SIP users chatting with XMPP users arrive with the interworking issue.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
