stoxgw-checkconfig --probe (and twistd stoxgw --check-config --probe) tries the XMPP component handshake for each domain and reports a wrong secret or an unreachable server.
