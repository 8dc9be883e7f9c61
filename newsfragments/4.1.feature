The gateway listens for SIP on the configured UDP, TCP and TLS ports, admits only trusted peers and answers OPTIONS.
