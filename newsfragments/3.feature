The gateway speaks MSRP (RFC 4975) with chunking, reports, TLS with fingerprint checks, RFC 7701 NICKNAME and an RFC 4976 relay client, and listens on the configured MSRP port.
