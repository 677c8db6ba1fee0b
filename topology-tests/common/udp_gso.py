#!/usr/bin/env python3
"""UDP segmentation offload from a container, for the topology tests. Run inside a
namespace (`ip netns exec NS`).

usage: udp_gso.py send ADDR SIZE SENDS SEGS   SENDS sendto() calls of SIZE * SEGS bytes
                                               each, with UDP_SEGMENT = SIZE: the
                                               kernel hands the device super-frames of
                                               SEGS datagrams
       udp_gso.py recv ADDR                    counts datagrams until 2 s pass without one

`recv` prints "DATAGRAMS SIZE[,SIZE...]": how many arrived and the distinct sizes seen.
It prints "ready" on stderr once bound.
"""
import socket
import sys
import time

PORT = 5555
UDP_SEGMENT = 103  # linux/udp.h


def send(addr, size, sends, segs):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, size)
    buf = bytes(size * segs)
    for _ in range(sends):
        s.sendto(buf, (addr, PORT))
        # Paced, so that a receive queue never overflows: this counts datagrams, not speed.
        time.sleep(0.002)


def recv(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, PORT))
    print("ready", file=sys.stderr, flush=True)
    s.settimeout(10)  # the first datagram
    count, sizes = 0, set()
    try:
        while True:
            sizes.add(len(s.recv(65535)))
            count += 1
            s.settimeout(2)
    except socket.timeout:
        pass
    print(count, ",".join(str(n) for n in sorted(sizes)) or "-")


def main():
    if sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        recv(sys.argv[2])


if __name__ == "__main__":
    main()
