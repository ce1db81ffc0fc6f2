#!/usr/bin/env python3
"""A loopback DNS upstream that answers like a distant ISP resolver: every
A question gets 192.0.2.1 (TTL 300), every other type an empty NOERROR,
each after DELAY_MS. Counts the questions it receives; `kill -USR1` writes
the count to COUNT_FILE. Used by benches/load/bursts.sh.

    slow_upstream.py PORT DELAY_MS COUNT_FILE
"""
import asyncio
import signal
import struct
import sys

port, delay, count_file = int(sys.argv[1]), int(sys.argv[2]) / 1000, sys.argv[3]
received = 0


def reply(query: bytes) -> bytes | None:
    if len(query) < 12 or struct.unpack("!H", query[4:6])[0] != 1:
        return None
    at = 12
    while at < len(query) and query[at] != 0:
        at += 1 + query[at]
    end = at + 5
    if end > len(query):
        return None
    qtype = struct.unpack("!H", query[at + 1:at + 3])[0]
    flags = 0x8180 | (struct.unpack("!H", query[2:4])[0] & 0x0100)
    answers = 1 if qtype == 1 else 0
    out = query[:2] + struct.pack("!HHHHH", flags, 1, answers, 0, 0) + query[12:end]
    if qtype == 1:
        out += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 1])
    return out


class Upstream(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        global received
        received += 1
        answer = reply(data)
        if answer is not None:
            asyncio.get_running_loop().call_later(delay, self.transport.sendto, answer, addr)


def write_count(*_):
    with open(count_file, "w") as f:
        f.write(f"{received}\n")


async def main():
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Upstream, local_addr=("127.0.0.1", port))
    loop.add_signal_handler(signal.SIGUSR1, write_count)
    await asyncio.Event().wait()


asyncio.run(main())
