"""A DNS server that answers every question the same way and records it (stdlib only).

User servers resolve the hub and the proxy through Docker's embedded DNS; every
other name reaches this server (their only upstream, `--dns`), which answers
NXDOMAIN and writes down who asked for what: a name looked up never leaves the
machine, so DNS cannot carry data out. The tests run the same program, with
--answer, as the "outside" resolver that records what reaches it.

    python3 sinkhole.py [--bind 0.0.0.0] [--port 53] [--log FILE] [--answer IP] [--answer-for NAME=IP ...]
"""

import argparse
import socket
import struct
import sys
import time

NXDOMAIN, NOERROR = 3, 0


def question(message):
    """(name, type, end offset of the question) of a query, or None if it is not one we can read."""
    if len(message) < 17:
        return None
    labels, offset = [], 12
    while offset < len(message):
        length = message[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0 or offset + 1 + length > len(message):
            return None
        labels.append(message[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    if offset + 4 > len(message):
        return None
    (qtype,) = struct.unpack("!H", message[offset : offset + 2])
    return ".".join(labels) + ".", qtype, offset + 4


def answer(message, end, address=None, qtype=1):
    """NXDOMAIN, or with an address an A record for an A question (NOERROR and nothing for the rest)."""
    query_id, flags = struct.unpack("!HH", message[:4])
    header_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080  # response, authoritative, RD copied, RA
    records = b""
    if address is None:
        header_flags |= NXDOMAIN
    elif qtype == 1:
        records = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(address)
    header = struct.pack("!HHHHHH", query_id, header_flags, 1, 1 if records else 0, 0, 0)
    return header + message[12:end] + records


def serve(bind, port, log, address=None, addresses=None):
    """Answer forever; addresses: {name.: IP} answered before `address` (None: NXDOMAIN)."""
    addresses = addresses or {}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, port))
    print(f"sinkhole DNS on {bind}:{port}", flush=True)
    while True:
        message, peer = sock.recvfrom(4096)
        asked = question(message)
        if asked is None:
            continue
        name, qtype, end = asked
        with open(log, "a") as f:
            f.write(f"{time.time():.3f} {peer[0]} {name} {qtype}\n")
        sock.sendto(answer(message, end, addresses.get(name.lower(), address), qtype), peer)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--log", default="/dev/stdout")
    parser.add_argument("--answer", default=None, help="answer A questions with this address instead of NXDOMAIN")
    parser.add_argument("--answer-for", action="append", default=[], metavar="NAME=IP", help="this name, this address")
    args = parser.parse_args(argv)
    pairs = (item.split("=", 1) for item in args.answer_for)
    serve(args.bind, args.port, args.log, args.answer, {f"{n.lower().rstrip('.')}.": ip for n, ip in pairs})


if __name__ == "__main__":
    main(sys.argv[1:])
