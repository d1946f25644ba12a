"""N scrapers of `detail=full` (300 actors, ~4.3 MB) through a 4 KiB receive window, each reading READ bytes
every GAP s (always inside the 30 s write timeout). Do they hold the 32 scrape permits for as long as they
like? A normal scrape and the probes meanwhile.  args: [n] [gap] [read] [observe]"""
from netclients import *
N = int(sys.argv[1]) if len(sys.argv) > 1 else 33; GAP = float(sys.argv[2]) if len(sys.argv) > 2 else 20
READ = int(sys.argv[3]) if len(sys.argv) > 3 else 4096; OBS = float(sys.argv[4]) if len(sys.argv) > 4 else 100
h = Host("--idle-timeout", "never", workload="none")
bulk(h, ["W%04d" % i for i in range(300)])
print("full scrape bytes", len(h.scrape("?detail=full")), "RSS kB", h.rss_kb())
socks = []
for i in range(N):
    s = connect(h, rcvbuf=4096); s.sendall(b"GET /metrics?detail=full HTTP/1.1\r\nHost: x\r\n\r\n"); socks.append(s)
got = [0] * N; alive = [True] * N; stop = False
def reader():
    while not stop:
        for i, s in enumerate(socks):
            if not alive[i]: continue
            try:
                s.settimeout(0.5); n = 0
                while n < READ:
                    d = s.recv(READ - n)
                    if not d: alive[i] = False; break
                    n += len(d)
                got[i] += n
            except socket.timeout: pass
            except Exception: alive[i] = False
        time.sleep(GAP)
th = threading.Thread(target=reader, daemon=True); th.start()
t0 = time.time()
while time.time() - t0 < OBS:
    time.sleep(15)
    m = timed_get(h, "/metrics", timeout=10); hz = timed_get(h, "/healthz", timeout=10)
    print("t=%4.0fs slow scrapers alive %d, bytes read total %d; normal /metrics %s in %.2fs; /healthz %s in %.2fs; RSS %d kB; WARN %d" % (
        time.time() - t0, sum(alive), sum(got), m[0], m[1], hz[0], hz[1], h.rss_kb(), len(warns(h))), flush=True)
stop = True
w = warns(h); print("WARN lines", len(w), w[0][:300] if w else "")
print("at this rate one scrape of 4.3 MB takes %.1f hours" % (4.3e6 / (READ / GAP) / 3600))
print("rc", h.term())
