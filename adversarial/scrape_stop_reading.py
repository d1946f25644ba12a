"""Metrics port: a scraper with a 4 KiB receive buffer reads part of a `detail=full` scrape, then stops reading
and never closes. Is it cut after the write timeout (30 s), with a WARN line, its slot freed for the next scrape?
Holds (exit 0) when it is cut within 40 s of its last read with one WARN line, counted once in
actor_metrics_http_connections_cut_total, and the next scrape is served."""
import sys, time, socket, subprocess, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ah import Host
N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
READ = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
h = Host("--idle-timeout", "never")
a, p = h.app.rsplit(":", 1)
import http.client
c = http.client.HTTPConnection(a, int(p), timeout=60)
for i in range(N):
    c.request("POST", "/actors/counter/S%05d" % i); c.getresponse().read()
host, port = h.metrics.rsplit(":", 1)
s = socket.create_connection((host, int(port))); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET /metrics?detail=full HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
n = 0
while n < READ:
    n += len(s.recv(65536))
t0 = time.time()
print("read %d bytes, then stopped reading" % n, flush=True)
def held():
    out = subprocess.run(["ss", "-tnp", "state", "all", "sport", "= :" + port], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if "actor-host" in l and str(s.getsockname()[1]) in l]
while held() and time.time() - t0 < 120:
    time.sleep(1)
waited = time.time() - t0
print("the host let go of the connection after %.0f s (write timeout 30 s)" % waited)
warns = [l[:200] for l in h.log().splitlines() if "WARN" in l]
print("WARN lines:", warns)
after = len(h.scrape())
print("a scrape after it:", after, "bytes")
from ah import pick
cut = pick(h.samples(), "actor_metrics_http_connections_cut_total")
print("actor_metrics_http_connections_cut_total", cut)
s.close()
h.term()
sys.exit(0 if waited < 40 and len(warns) == 1 and after > 0 and cut == {frozenset(): 1.0} else 1)
