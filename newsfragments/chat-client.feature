stoxgw-chat is a command-line SIP/MSRP chat client that joins a room, sends the lines read from standard input as CPIM messages and prints what the room sends, with fixed status lines for scripts.
