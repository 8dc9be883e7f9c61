The SIP user agent core (transports, RFC 3261 transactions and INVITE dialogs) is in place and interoperates with SIPp and Kamailio.
