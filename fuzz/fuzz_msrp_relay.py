"""
Fuzz the RFC 4976 AUTH exchange with a relay
(L{stoxgw.msrp.relayauth.RelayAuthenticator}): the relay's responses (401
challenges, 200 with Use-Path, Expires and Authentication-Info, 423 with
Min-Expires/Max-Expires...) are what it reads from the relay.

Input: one byte of options (credentials or none, an Expires asked for),
then a stream of MSRP messages; every response the parser gives is handed
to the authenticator, re-addressed to its pending transaction (a real
relay answers the AUTH it got; the fuzzer cannot guess the random ids).

Clean rejection: L{RelayAuthError} (all the outcomes the exchange can
end in).  Every AUTH it sends next must parse.

Seeds: the RFC 4976 section 5.1 responses of C{tests/fixtures/msrp}, in
the order of the RFC's exchanges.
"""

from __future__ import annotations

import dataclasses

import atheris

from _harness import fixtures, knownIssue, main

with atheris.instrument_imports(include=["stoxgw"]):
    from stoxgw.msrp.message import MSRPResponse
    from stoxgw.msrp.parser import MSRPParser, parseMessage
    from stoxgw.msrp.relay import RelayAuthError, RelayAuthorized
    from stoxgw.msrp.relayauth import RelayAuthenticator
    from stoxgw.msrp.uri import MSRPURI

INTRA = MSRPURI.fromString("msrps://alice@intra.example.com;tcp")
ALICE = MSRPURI.fromString("msrps://alice.example.com:9892/98cjs;tcp")


def testOneInput(data: bytes) -> None:
    """
    Run one exchange against the responses in C{data}.
    """
    if not data:
        return
    options, stream = data[0], data[1:]
    credentials = ("Alice", "secret") if options & 1 else (None, None)
    authenticator = RelayAuthenticator(
        INTRA,
        ALICE,
        *credentials,
        expires=900 if options & 2 else None,
        cnonceFactory=lambda: "0a4f113b",
    )
    request = authenticator.firstRequest()
    for event in MSRPParser().feed(stream):
        if not isinstance(event, MSRPResponse):
            continue
        pending = authenticator.pendingTransactionID
        if pending is None:
            request = authenticator.firstRequest()
            pending = request.transactionID
        response = dataclasses.replace(event, transactionID=pending)
        try:
            outcome = authenticator.responseReceived(response)
        except RelayAuthError:
            continue
        except Exception as e:
            if knownIssue(e):
                continue
            raise
        if isinstance(outcome, RelayAuthorized):
            outcome.sdpPath, outcome.toPath((ALICE,)), outcome.refreshDelay()
        else:
            parseMessage(outcome.serialize())


def seeds() -> list[bytes]:
    """
    The RFC 4976 exchanges: 401 then 200, for both relays of the example.
    """
    r = {
        name: fixtures(f"msrp/rfc4976-5.1-{name}.msrp")[0]
        for name in ("401-49fh", "200ok-49fi", "401-mnbvw", "401-m2nbvw", "200ok-m3nbvx", "200ok-m4nbvx")
    }
    result = []
    for options in (0, 1, 3):
        result.append(bytes([options]) + r["401-49fh"] + r["200ok-49fi"])
        result.append(bytes([options]) + r["401-mnbvw"] + r["401-m2nbvw"] + r["200ok-m3nbvx"])
        result.append(bytes([options]) + r["200ok-m4nbvx"])
    return result


if __name__ == "__main__":
    main(testOneInput, seeds)
