MSRP receives about twice as many messages per second: requests are parsed in one pass and the responses to one read go out in one write.
