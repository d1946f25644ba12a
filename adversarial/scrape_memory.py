"""Scrape memory with many retained actors: RSS sampled every 5 ms during a
?detail=full scrape (plain and gzip, text and protobuf), against the README's
claim that a scrape adds well under 16 MB whatever the actor count.
Holds when every scrape's peak RSS is under its start + 16 MB, and RSS at the
end is under RSS after the creates + 32 MB (no growth per scrape).

python3 scrape_memory.py [actors]
"""
import sys, threading, time, http.client
from ah import Host
from mass_create import run
N = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
h = Host("--max-live-actors", "2000", "--idle-timeout", "never")
secs, bad = run(h.app, N, 8)
print("created %d actors in %.1fs, %d failures %s" % (N, secs, len(bad), bad[:2]))
time.sleep(1)
problems = []
rss_start = h.rss_kb()
def measure(path, headers, slow=False):
    base = h.rss_kb(); peak = [base]; stop = threading.Event()
    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], h.rss_kb()); time.sleep(0.005)
    th = threading.Thread(target=sample); th.start()
    mh, mp = h.metrics.rsplit(":", 1)
    c = http.client.HTTPConnection(mh, int(mp), timeout=300)
    t = time.time()
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    n = 0
    while True:
        d = r.read(65536 if not slow else 4096)
        if not d: break
        n += len(d)
        if slow: time.sleep(0.001)
    dt = time.time() - t
    stop.set(); th.join()
    print("%-60s %-9s %7.1f MB body in %5.1fs: RSS %4d MB -> peak %4d MB (+%d MB)" % (
        path, headers.get("Accept-Encoding", "") + ("pb" if "protobuf" in headers.get("Accept", "") else ""),
        n / 1e6, dt, base // 1024, peak[0] // 1024, (peak[0] - base) // 1024))
    if peak[0] - base >= 16 * 1024:
        problems.append("%s %s: +%d MB" % (path, headers, (peak[0] - base) // 1024))
PB = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
for path, hd in [("/metrics", {}), ("/metrics?detail=full", {}), ("/metrics?detail=full", {"Accept-Encoding": "gzip"}),
                 ("/metrics?detail=full", {"Accept": PB}), ("/metrics", {"Accept": PB}),
                 ("/metrics?detail=full", {})]:
    measure(path, hd)
# two concurrent full scrapes
ths = [threading.Thread(target=measure, args=("/metrics?detail=full", {})) for _ in range(2)]
[t.start() for t in ths]; [t.join() for t in ths]
rss_end = h.rss_kb()
print("RSS at end %d MB (after the creates %d MB)" % (rss_end // 1024, rss_start // 1024))
if rss_end - rss_start > 32 * 1024:
    problems.append("RSS grew %d MB over the scrapes" % ((rss_end - rss_start) // 1024))
if bad:
    problems.append("%d creates failed" % len(bad))
h.term()
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
