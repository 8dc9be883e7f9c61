"""
twistd plugin for stoxgw: C{twistd stoxgw --help}.
"""

from twisted.application.service import ServiceMaker

stoxgw = ServiceMaker(
    "stoxgw",
    "stoxgw.tap",
    "SIP/MSRP <-> XMPP groupchat gateway (RFC 7702)",
    "stoxgw",
)
