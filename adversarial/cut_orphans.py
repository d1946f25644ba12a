"""Repeat the cut: C cycles of N detail=full scrapers (300 actors, ~4.3 MB) through 4 KiB windows that never read
(clients stay alive). Each cycle waits for the cut (~35 s). Kernel memory held for the cut connections, per cycle.
args: N C"""
import sys; sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from netclients import *
N = int(sys.argv[1]) if len(sys.argv) > 1 else 30; C = int(sys.argv[2]) if len(sys.argv) > 2 else 3
h = Host("--idle-timeout", "never", workload="none")
bulk(h, ["O%04d" % i for i in range(300)])
port = h.metrics.rsplit(":", 1)[1]
def portq():
    out = subprocess.run(["ss", "-tn", "state", "all", "sport", "= :" + port], capture_output=True, text=True).stdout.splitlines()[1:]
    rows = [l.split() for l in out if l.strip() and not l.startswith("LISTEN")]
    return len(rows), sum(int(r[2]) for r in rows)
def tcpmem():
    for l in open("/proc/net/sockstat"):
        if l.startswith("TCP:"): f = l.split(); return int(f[f.index("orphan") + 1]), int(f[f.index("mem") + 1]) * 4096 / 1e6
o0, m0 = tcpmem(); print("before: orphans %d, TCP mem %.1f MB, host RSS %d kB" % (o0, m0, h.rss_kb()), flush=True)
allsocks = []
for c in range(C):
    for i in range(N):
        s = connect(h, rcvbuf=4096); s.sendall(b"GET /metrics?detail=full HTTP/1.1\r\nHost: x\r\n\r\n"); allsocks.append(s)
    time.sleep(36)
    n, q = portq(); o, m = tcpmem()
    print("cycle %d: host-held %d, port sockets %d with Send-Q %.1f MB, machine orphans %d, TCP mem %.1f MB, host RSS %d kB, WARN %d, /metrics %s" % (
        c + 1, len(held_conns(h)), n, q / 1e6, o, m, h.rss_kb(), len(warns(h)), timed_get(h, "/metrics")[0]), flush=True)
print("rc", h.term())
for s in allsocks: s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"); s.close()
time.sleep(1); print("after clients reset: orphans %d TCP mem %.1f MB" % tcpmem())
