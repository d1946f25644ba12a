"""N concurrent clients, each with a 4 KiB receive buffer, read a `detail=full` scrape as fast as they can
(Connection: close). Does each get the whole body (last chunk) or a 503? RSS before/after.  args: [n] [actors]"""
from netclients import *
N = int(sys.argv[1]) if len(sys.argv) > 1 else 40; NA = int(sys.argv[2]) if len(sys.argv) > 2 else 100
h = Host("--idle-timeout", "never", workload="none")
bulk(h, ["M%04d" % i for i in range(NA)])
ref = len(h.scrape("?detail=full")); time.sleep(1); rss0 = h.rss_kb(); print("full body %d B, RSS before %d kB" % (ref, rss0))
res = [None] * N
def one(i):
    s = connect(h, rcvbuf=4096); s.settimeout(60)
    s.sendall(b"GET /metrics?detail=full HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = b""; t0 = time.time()
    try:
        while True:
            d = s.recv(65536)
            if not d: break
            raw += d
    except Exception as e: raw += b"<ERR %r>" % e
    res[i] = (raw.split(b"\r\n")[0].decode(), len(raw), raw.endswith(b"0\r\n\r\n"), time.time() - t0)
ts = [threading.Thread(target=one, args=(i,)) for i in range(N)]; [t.start() for t in ts]
peak = 0
while any(t.is_alive() for t in ts): peak = max(peak, h.rss_kb()); time.sleep(0.5)
from collections import Counter
print("statuses", Counter(r[0] for r in res))
ok = [r for r in res if "200" in r[0]]
print("200s: %d, with last chunk %d, bytes min %d max %d, time min %.1f max %.1f s" % (len(ok), sum(r[2] for r in ok), min(r[1] for r in ok), max(r[1] for r in ok), min(r[3] for r in ok), max(r[3] for r in ok)))
time.sleep(3); print("RSS before %d kB, peak %d kB, after %d kB" % (rss0, peak, h.rss_kb()))
print("warns", len(warns(h)), warns(h)[:2]); print("rc", h.term())
