"""Clients that ask for /metrics and never read the body hold the metrics
server's connection slots (max 256) with no write timeout: once the slots are
taken, /healthz, /readyz and real scrapes hang. A liveness probe on /healthz
then restarts a healthy pod.

(F4, until a6da482.) Holds now when: with the readers holding, /healthz and
/readyz answer 200 in under 1 s, /metrics answers (a 503 past the scrape
permits) in under 1 s, and /healthz still does after the wait and after the
readers close.

python3 slow_reader.py [actors] [hold_connections] [wait_s]
"""
import socket, sys, time, threading
from ah import Host
N = int(sys.argv[1]) if len(sys.argv) > 1 else 400
C = int(sys.argv[2]) if len(sys.argv) > 2 else 260
WAIT = float(sys.argv[3]) if len(sys.argv) > 3 else 60
problems = []
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
        dt = time.time() - t
        print("%s -> %d in %.2fs" % (path, st, dt))
        if dt > 1 or st not in ((200,) if path != "/metrics" else (200, 503)):
            problems.append("%s -> %d in %.2fs" % (path, st, dt))
    except Exception as e:
        print("%s -> %s after %.1fs" % (path, type(e).__name__, time.time() - t))
        problems.append("%s -> %s" % (path, type(e).__name__))
print("waiting %d s more: is anything ever timed out?" % WAIT)
time.sleep(WAIT)
t = time.time()
try:
    st, body = h.get_m("/healthz", timeout=10)
    dt = time.time() - t
    print("/healthz after %d s -> %d in %.2fs" % (WAIT, st, dt))
    if st != 200 or dt > 1: problems.append("/healthz after the wait: %d in %.2fs" % (st, dt))
except Exception as e:
    print("/healthz after %d s -> %s" % (WAIT, type(e).__name__))
    problems.append("/healthz after the wait: %s" % type(e).__name__)
s = h.samples() if False else None
for x in socks:
    x.close()
time.sleep(1)
t = time.time()
st, body = h.get_m("/healthz", timeout=10)
dt = time.time() - t
print("after the readers closed: /healthz -> %d in %.2fs" % (st, dt))
if st != 200 or dt > 1: problems.append("/healthz after the readers closed: %d in %.2fs" % (st, dt))
print("RSS %d MB" % (h.rss_kb() // 1024))
h.term()
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
