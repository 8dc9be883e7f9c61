XMPP users can join SIP/MSRP chat rooms through the room domain (RFC 7702 section 5): the gateway INVITEs the focus, sets the nick with NICKNAME, and carries groupchat and private messages both ways.
