"""UDP plumbing shared by everything that sends the feed: sender sockets (addresses are ``vocab.addr``)."""

from __future__ import annotations

import socket
import time

from vocab.addr import is_multicast


def sender_socket(host: str, port: int, *, interface: str = "127.0.0.1") -> socket.socket:
    """A UDP socket connected to (host, port); multicast leaves from ``interface`` with TTL 1.

    The interface is explicit because the default route would carry a test feed off this host.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    if is_multicast(host):
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    sock.connect((host, port))
    return sock


def send_packet(sock: socket.socket, packet: bytes) -> None:
    """Send, waiting out a full socket buffer: a dropped packet would be a gap for every listener."""
    while True:
        try:
            sock.send(packet)
            return
        except BlockingIOError:
            time.sleep(0.0002)
        except ConnectionRefusedError:
            return  # nobody listening on unicast loopback yet: UDP semantics, the packet is gone
