#!/usr/bin/python3
"""Long-lived HTTP/1.1 keep-alive connections through a VIP, each asking
GET / every PERIOD seconds and checking that the same real server answers
("rsN") for the connection's whole life.

    holder.py VIP PORT[,PORT...] CONNS SOURCES STOPFILE OUT

CONNS connections per port, from the SOURCES addresses (comma-separated)
in turn, on ephemeral ports. `OUT.ready` appears once every connection has
had its first answer. When STOPFILE appears the connections close and OUT
gets one JSON object per connection: port, source address and port, the
server, requests answered, and `broken` (why it broke, or null).
"""

import json
import os
import socket
import sys
import threading
import time

PERIOD = 0.2
TIMEOUT = 8.0

vip, ports, conns, sources, stopfile, out = sys.argv[1:7]
ports = [int(p) for p in ports.split(",")]
sources = sources.split(",")
conns = int(conns)


def ask(s, buf):
    s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed by the peer")
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError("answered %r" % head.split(b"\r\n")[0])
    while len(rest) < length:
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed mid-answer")
        rest += d
    return rest[:length].decode().strip(), rest[length:]


class Conn(threading.Thread):
    def __init__(self, port, src):
        super().__init__(daemon=True)
        self.port, self.src = port, src
        self.sport, self.server, self.answered, self.broken = 0, None, 0, None
        self.first = threading.Event()

    def run(self):
        try:
            s = socket.create_connection((vip, self.port), timeout=TIMEOUT, source_address=(self.src, 0))
            self.sport = s.getsockname()[1]
            buf = b""
            while not os.path.exists(stopfile):
                name, buf = ask(s, buf)
                if self.server is None:
                    self.server = name
                elif name != self.server:
                    raise ConnectionError("answered by %s, was %s" % (name, self.server))
                self.answered += 1
                self.first.set()
                time.sleep(PERIOD)
            s.close()
        except Exception as e:  # every way a connection breaks is recorded
            self.broken = "%s at %.3f" % (e, time.time())
        self.first.set()


threads = []
for port in ports:
    for k in range(conns):
        t = Conn(port, sources[len(threads) % len(sources)])
        t.start()
        threads.append(t)
for t in threads:
    t.first.wait(30)
open(out + ".ready", "w").close()
for t in threads:
    t.join()
with open(out, "w") as f:
    for t in threads:
        f.write(json.dumps({"port": t.port, "src": t.src, "sport": t.sport, "server": t.server,
                            "answered": t.answered, "broken": t.broken}) + "\n")
