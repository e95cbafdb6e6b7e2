"""Test helper: a real server's TCP sink behind PROXY protocol v2 (it stands
in for an upload endpoint). Per connection: read the v2 header, then every
byte to the end of the stream, and answer one line, "CLIENT PORT SHA256",
naming the client the header gave and the digest of what followed it.

Usage: pp_sink.py PORT"""
import hashlib
import ipaddress
import socket
import struct
import sys
import threading

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def read_exact(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise EOFError("stream ended inside the PROXY header")
        b += x
    return b


def serve(c):
    with c:
        try:
            head = read_exact(c, 16)
            if head[:12] != SIG or head[12] != 0x21:
                c.sendall(b"BAD-HEADER %s\n" % head.hex().encode())
                return
            addrs = read_exact(c, struct.unpack("!H", head[14:16])[0])
            if head[13] >> 4 == 1:
                client, port = ipaddress.IPv4Address(addrs[0:4]), struct.unpack("!H", addrs[8:10])[0]
            else:
                client, port = ipaddress.IPv6Address(addrs[0:16]), struct.unpack("!H", addrs[32:34])[0]
            h = hashlib.sha256()
            while True:
                x = c.recv(1 << 16)
                if not x:
                    break
                h.update(x)
            c.sendall(b"%s %d %s\n" % (str(client).encode(), port, h.hexdigest().encode()))
        except (EOFError, OSError) as e:
            print("sink:", e, file=sys.stderr)


def main():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", int(sys.argv[1])))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


main()
