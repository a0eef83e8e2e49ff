#!/usr/bin/env python3
"""Access-Request through pyrad (a RADIUS client nobody here wrote), for tokengate's interop tests.

Usage: pyrad_client.py HOST PORT SECRET USER PASSWORD [STATE]
Prints one JSON object: {"code": ..., "reply_message": ..., "state": ..., "class": ...,
"session_timeout": ..., "ma_first": bool}; {"code": null} when no valid reply came. pyrad itself
verifies the Response Authenticator and (enforce_ma) the Message-Authenticator.
"""
import json
import sys
import tempfile

import pyrad.client
from pyrad.client import Client
from pyrad.dictionary import Dictionary
import pyrad.packet

# A minimal dictionary written for this test (pyrad needs one); attribute numbers from RFC 2865/2869.
DICT = """
ATTRIBUTE User-Name 1 string
ATTRIBUTE User-Password 2 string encrypt=1
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE State 24 octets
ATTRIBUTE Class 25 octets
ATTRIBUTE Session-Timeout 27 integer
ATTRIBUTE Proxy-State 33 octets
ATTRIBUTE Prompt 76 integer
ATTRIBUTE Message-Authenticator 80 octets
"""


def main():
    host, port, secret, user, password = sys.argv[1:6]
    state = sys.argv[6] if len(sys.argv) > 6 else None
    with tempfile.NamedTemporaryFile("w", suffix=".dict", delete=False) as f:
        f.write(DICT)
        dict_path = f.name
    client = Client(server=host, authport=int(port), secret=secret.encode(), dict=Dictionary(dict_path))
    client.timeout = 3
    client.retries = 1
    # Refuse replies without a valid Message-Authenticator (pyrad >= 2.5).
    client.enforce_ma = True
    req = client.CreateAuthPacket(code=pyrad.packet.AccessRequest, User_Name=user)
    req["User-Password"] = req.PwCrypt(password)
    if state:
        req["State"] = state.encode()
    req.add_message_authenticator()
    try:
        reply = client.SendPacket(req)
    except pyrad.client.Timeout:
        print(json.dumps({"code": None}))
        return
    raw = reply.raw_packet
    out = {
        "code": reply.code,
        "reply_message": reply.get("Reply-Message", [None])[0],
        "state": (reply.get("State", [b""])[0] or b"").decode(),
        "class": (reply.get("Class", [b""])[0] or b"").decode(),
        "session_timeout": reply.get("Session-Timeout", [None])[0],
        "ma_first": len(raw) > 20 and raw[20] == 80,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
