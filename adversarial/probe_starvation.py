"""Scrapers that never read take the 32 scrape permits; the rest get 503 at
once but keep their kept-alive connections open (never reading, never
closing) until the 5 s header timeout cuts them, and reconnect. 300 such
scrapers hold every one of the 256 connection slots, so /healthz and /readyz
wait for a slot: seconds, not milliseconds (a 1 s kubelet probe fails).

Until the probe-slot fix (after 5e41d9f) this failed. Holds when every probe
answers 200 and none takes over 1 s.

python3 probe_starvation.py [scrapers] [seconds]
"""
import socket, sys, threading, time
from ah import Host

C = int(sys.argv[1]) if len(sys.argv) > 1 else 300
S = float(sys.argv[2]) if len(sys.argv) > 2 else 20
h = Host("--per-actor-detail", "full")
from mass_create import run
run(h.app, 400, 8, prefix="k")
MH, MP = h.metrics.rsplit(":", 1); MP = int(MP)
stop = threading.Event(); conns = [0]


def scraper():
    while not stop.is_set():
        try:
            s = socket.create_connection((MH, MP), timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            conns[0] += 1
            head = s.recv(12, socket.MSG_PEEK)
            if head.startswith(b"HTTP/1.1 503"):
                # a 503: read it, then idle on the kept-alive connection until it is cut
                while s.recv(65536):
                    pass
            else:
                # a scrape permit: never read; the write timeout cuts it after 30 s
                t = time.time()
                while not stop.is_set() and time.time() - t < 31:
                    time.sleep(0.2)
            s.close()
        except OSError:
            time.sleep(0.1)


ts = [threading.Thread(target=scraper, daemon=True) for _ in range(C)]
[t.start() for t in ts]
time.sleep(2)
lat = []
t0 = time.time()
while time.time() - t0 < S:
    for path in ("/healthz", "/readyz"):
        t = time.time()
        try:
            st = h.get_m(path, timeout=15)[0]
        except Exception as e:
            st = type(e).__name__
        lat.append((path, st, time.time() - t))
    time.sleep(0.5)
stop.set()
d = sorted(x[2] for x in lat)
print("%d never-reading scrapers (%d connections made): %d probes, latency median %.2fs, max %.2fs, %d over 1 s" % (
    C, conns[0], len(d), d[len(d) // 2], d[-1], sum(1 for x in d if x > 1)))
print("statuses:", sorted(set(x[1] for x in lat), key=str))
h.kill()
ok = d[-1] <= 1 and all(x[1] == 200 for x in lat)
print("OK" if ok else "PROBLEM")
sys.exit(0 if ok else 1)
