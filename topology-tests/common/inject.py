#!/usr/bin/env python3
"""Sends raw Ethernet frames out of one interface through an AF_PACKET socket, for the
topology tests' bad-input scenarios. Run inside a namespace (`ip netns exec NS`).

usage: inject.py IFACE   then, on stdin, one job per line:
    COUNT HEX            send the frame HEX, COUNT times
    COUNT HEX randsrc    the same, each copy with a new random unicast source MAC
Prints how many frames the kernel accepted and how many it refused (with the first error).
"""
import random
import socket
import sys


def main():
    iface = sys.argv[1]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    sent = refused = 0
    first_error = ""
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        count, frame = int(parts[0]), bytearray(bytes.fromhex(parts[1]))
        randsrc = len(parts) > 2 and parts[2] == "randsrc"
        for _ in range(count):
            if randsrc:
                mac = random.getrandbits(48).to_bytes(6, "big")
                # Locally administered unicast: never a group address.
                frame[6] = (mac[0] & 0xFC) | 0x02
                frame[7:12] = mac[1:]
            while True:
                try:
                    s.send(frame)
                    sent += 1
                    break
                except BlockingIOError:
                    continue
                except OSError as e:
                    if e.errno == 105:  # ENOBUFS: the queue is full, try again
                        continue
                    refused += 1
                    first_error = first_error or str(e)
                    break
    print(f"sent {sent} refused {refused} {first_error}")


main()
