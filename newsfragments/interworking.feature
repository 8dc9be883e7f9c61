A SIP user can join an XMPP MUC room through the gateway and chat with its occupants (RFC 7702 section 6, first version), and make demo shows it.
