"""UDP plumbing shared by everything that sends or receives the feed: addresses and sender sockets."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import time


def parse_hostport(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """'HOST:PORT', ':PORT' or 'PORT' -> (host, port); a clear argparse error for anything else."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        host, port = "", str(text)
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range in {text!r}")
    return (host.strip("[]") or default_host), number


def is_multicast(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_multicast
    except ValueError:
        return False


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
