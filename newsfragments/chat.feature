The chat layer joins a SIP INVITE dialog and an MSRP session into one chat session, answering or offering, with RFC 6135 connection setup and a single, reasoned end.
