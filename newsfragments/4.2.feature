The SIP side finds next hops with RFC 3263 DNS (or configured static routes) and authenticates requests from untrusted peers with SHA-256 or MD5 digest challenges.
