#!/usr/bin/env python3
"""TACACS+ requests through the PyPI `tacacs_plus` client (nobody here wrote it), for interop tests.

Usage: tacacs_client.py HOST PORT KEY authen-ascii|authen-pap|authen-chap USER PASSWORD
       tacacs_client.py HOST PORT KEY author USER ARG...
       tacacs_client.py HOST PORT KEY acct-start|acct-stop USER ARG...
Prints one JSON object: {"valid": bool, "status": int, "server_msg": str, "args": [str]}.
"""
import json
import sys

from tacacs_plus.client import TACACSClient
from tacacs_plus.flags import (
    TAC_PLUS_ACCT_FLAG_START,
    TAC_PLUS_ACCT_FLAG_STOP,
    TAC_PLUS_AUTHEN_TYPE_ASCII,
    TAC_PLUS_AUTHEN_TYPE_CHAP,
    TAC_PLUS_AUTHEN_TYPE_PAP,
)


def text(b):
    if isinstance(b, bytes):
        return b.decode("utf-8", "replace")
    return str(b or "")


def main():
    host, port, key, op, user = sys.argv[1:6]
    rest = sys.argv[6:]
    cli = TACACSClient(host, int(port), key, timeout=10)
    out = {}
    if op in ("authen-ascii", "authen-pap"):
        kind = TAC_PLUS_AUTHEN_TYPE_ASCII if op == "authen-ascii" else TAC_PLUS_AUTHEN_TYPE_PAP
        r = cli.authenticate(user, rest[0], authen_type=kind)
        out = {"valid": bool(r.valid), "status": r.status, "server_msg": text(r.server_msg), "args": []}
    elif op == "authen-chap":
        # The client computes MD5(id | password | challenge); the server never sees the password.
        r = cli.authenticate(user, rest[0], authen_type=TAC_PLUS_AUTHEN_TYPE_CHAP,
                             chap_ppp_id="7", chap_challenge="tokengate-chap-challenge")
        out = {"valid": bool(r.valid), "status": r.status, "server_msg": text(r.server_msg), "args": []}
    elif op == "author":
        r = cli.authorize(user, arguments=[a.encode() for a in rest])
        args = [text(a) for a in (r.arguments or [])]
        out = {"valid": bool(r.valid), "status": r.status, "server_msg": text(r.server_msg), "args": args}
    elif op in ("acct-start", "acct-stop"):
        flags = TAC_PLUS_ACCT_FLAG_START if op == "acct-start" else TAC_PLUS_ACCT_FLAG_STOP
        r = cli.account(user, flags, arguments=[a.encode() for a in rest])
        out = {"valid": bool(r.valid), "status": r.status, "server_msg": text(r.server_msg), "args": []}
    else:
        sys.exit("unknown operation " + op)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
