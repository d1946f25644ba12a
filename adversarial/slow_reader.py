"""Clients that ask for /metrics and never read the body hold the metrics
server's connection slots (max 256) with no write timeout: once the slots are
taken, /healthz, /readyz and real scrapes hang. A liveness probe on /healthz
then restarts a healthy pod.

python3 slow_reader.py [actors] [hold_connections]
"""
import socket, sys, time, threading
from ah import Host
N = int(sys.argv[1]) if len(sys.argv) > 1 else 400
C = int(sys.argv[2]) if len(sys.argv) > 2 else 260
h = Host("--per-actor-detail", "full")
for i in range(N):
    h.create("k%d" % i)
size = len(h.scrape())
print("scrape size at full: %d bytes" % size)
mh, mp = h.metrics.rsplit(":", 1)
socks = []
for i in range(C):
    s = socket.create_connection((mh, int(mp)))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
time.sleep(2)
for path in ["/healthz", "/readyz", "/metrics"]:
    t = time.time()
    try:
        st, body = h.get_m(path, timeout=15)
        print("%s -> %d in %.2fs" % (path, st, time.time() - t))
    except Exception as e:
        print("%s -> %s after %.1fs" % (path, type(e).__name__, time.time() - t))
print("waiting 60 s more: is anything ever timed out?")
time.sleep(60)
t = time.time()
try:
    st, body = h.get_m("/healthz", timeout=10)
    print("/healthz after 60 s -> %d in %.2fs" % (st, time.time() - t))
except Exception as e:
    print("/healthz after 60 s -> %s" % type(e).__name__)
s = h.samples() if False else None
for x in socks:
    x.close()
time.sleep(1)
t = time.time()
st, body = h.get_m("/healthz", timeout=10)
print("after the readers closed: /healthz -> %d in %.2fs" % (st, time.time() - t))
print("RSS %d MB" % (h.rss_kb() // 1024))
h.term()
