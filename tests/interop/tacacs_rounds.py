#!/usr/bin/env python3
"""TACACS+ exchanges the high-level `tacacs_plus` client cannot drive, built from its own packet
classes (TACACSHeader, TACACSPacket, TACACSAuthenticationStart/Continue/Reply) for interop tests.

Usage:
  tacacs_rounds.py HOST PORT KEY rounds USER ANSWER...
      One ASCII login: START with USER, then each GETPASS/GETDATA is answered with the next
      ANSWER (passcode, next tokencode, new PIN, ...) until PASS/FAIL or the answers run out.
  tacacs_rounds.py HOST PORT KEY single-connect USER:PASSCODE...
      One TCP connection with the single-connect flag; one PAP session per USER:PASSCODE, all
      STARTs sent before any reply is read (interleaved sessions).
Prints one JSON object: {"replies": [{"session": int, "status": int, "server_msg": str}, ...],
"closed": bool} where closed says whether the server closed the connection at the end.
"""
import json
import socket
import struct
import sys

from tacacs_plus.authentication import (
    TACACSAuthenticationContinue,
    TACACSAuthenticationReply,
    TACACSAuthenticationStart,
)
from tacacs_plus.flags import (
    TAC_PLUS_AUTHEN,
    TAC_PLUS_AUTHEN_STATUS_GETDATA,
    TAC_PLUS_AUTHEN_STATUS_GETPASS,
    TAC_PLUS_AUTHEN_TYPE_ASCII,
    TAC_PLUS_AUTHEN_TYPE_PAP,
    TAC_PLUS_MAJOR_VER,
    TAC_PLUS_MINOR_VER,
    TAC_PLUS_MINOR_VER_ONE,
)
from tacacs_plus.packet import TACACSHeader, TACACSPacket

SINGLE_CONNECT = 0x04


def send(sock, key, session_id, seq_no, body, minor, flags=0):
    header = TACACSHeader((TAC_PLUS_MAJOR_VER * 0x10) + minor, TAC_PLUS_AUTHEN, session_id,
                          len(body.packed), seq_no=seq_no, flags=flags)
    sock.sendall(bytes(TACACSPacket(header, body.packed, key)))


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def recv(sock, key):
    """One reply: (session_id, seq_no, TACACSAuthenticationReply), or None on close."""
    raw = read_exact(sock, 12)
    if raw is None:
        return None
    _, _, seq_no, flags, session_id, length = struct.unpack("!BBBBII", raw)
    header = TACACSHeader(raw[0], raw[1], session_id, length, seq_no=seq_no, flags=flags)
    body = read_exact(sock, length)
    if body is None:
        return None
    clear = TACACSPacket(header, body, key).body  # XOR with the pad both ways
    return session_id, seq_no, TACACSAuthenticationReply.unpacked(clear)


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b or "")


def entry(session_id, reply):
    return {"session": session_id, "status": reply.status, "server_msg": text(reply.server_msg)}


def closed(sock):
    """Whether the server closed the connection within half a second (well under any idle
    timeout the tests configure)."""
    sock.settimeout(0.5)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def rounds(sock, key, user, answers):
    session_id = 0x1234ABCD
    send(sock, key, session_id, 1,
         TACACSAuthenticationStart(user, TAC_PLUS_AUTHEN_TYPE_ASCII), TAC_PLUS_MINOR_VER)
    replies = []
    answers = list(answers)
    while True:
        got = recv(sock, key)
        if got is None:
            break
        _, seq_no, reply = got
        replies.append(entry(session_id, reply))
        asks = reply.status in (TAC_PLUS_AUTHEN_STATUS_GETPASS, TAC_PLUS_AUTHEN_STATUS_GETDATA)
        if not asks or not answers:
            break
        send(sock, key, session_id, seq_no + 1, TACACSAuthenticationContinue(answers.pop(0)),
             TAC_PLUS_MINOR_VER)
    return replies


def single_connect(sock, key, pairs):
    sessions = []
    for i, pair in enumerate(pairs):
        user, passcode = pair.split(":", 1)
        session_id = 0x5000 + i
        sessions.append(session_id)
        start = TACACSAuthenticationStart(user, TAC_PLUS_AUTHEN_TYPE_PAP, data=passcode.encode())
        send(sock, key, session_id, 1, start, TAC_PLUS_MINOR_VER_ONE, flags=SINGLE_CONNECT)
    replies = []
    for _ in sessions:
        got = recv(sock, key)
        if got is None:
            break
        session_id, _, reply = got
        replies.append(entry(session_id, reply))
    return replies


def main():
    host, port, key, op = sys.argv[1:5]
    rest = sys.argv[5:]
    sock = socket.create_connection((host, int(port)), timeout=10)
    if op == "rounds":
        replies = rounds(sock, key, rest[0], rest[1:])
    elif op == "single-connect":
        replies = single_connect(sock, key, rest)
    else:
        sys.exit("unknown operation " + op)
    print(json.dumps({"replies": replies, "closed": closed(sock)}))
    sock.close()


if __name__ == "__main__":
    main()
