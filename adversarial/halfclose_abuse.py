"""Half-close abuse, N connections per case: (a) request with Content-Length 100 but 10 body bytes, then SHUT_WR;
(b) full request then SHUT_WR, never read, 2 KiB window (stalled in linger / mid-response);
(c) partial headers + SHUT_WR; (d) SIGTERM while (b) holds. Slots/fds/CPU/probe/scrape figures.  args: N"""
import sys; sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from netclients import *
N = int(sys.argv[1]) if len(sys.argv) > 1 else 250
h = Host("--idle-timeout", "never", workload="none")
bulk(h, ["Q%04d" % i for i in range(300)])
fd0 = h.fds(); print("idle fds", fd0, flush=True)
def cpu():
    f = open("/proc/%d/stat" % h.pid).read().split(")")[1].split(); return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def drain_status(s, limit=15):
    s.settimeout(limit); raw = b""
    try:
        while True:
            d = s.recv(65536)
            if not d: break
            raw += d
    except Exception as e: return "ERR %r" % e
    return raw.split(b"\r\n")[0].decode(errors="replace")[9:]
# (a)
t0 = time.time(); socks = []
for i in range(N):
    s = connect(h); s.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"); s.shutdown(socket.SHUT_WR); socks.append(s)
st = {}
for s in socks: r = drain_status(s); st[r] = st.get(r, 0) + 1; s.close()
time.sleep(0.5); print("(a) CL100+10B+SHUT_WR x%d: statuses %s in %.2fs; held sockets %d fds %d" % (N, st, time.time() - t0, len(held_conns(h)), h.fds()), flush=True)
# (c)
t0 = time.time(); socks = []
for i in range(N):
    s = connect(h); s.sendall(b"GET /metrics HTTP/1.1\r\nHost"); s.shutdown(socket.SHUT_WR); socks.append(s)
st = {}
for s in socks: r = drain_status(s); st[r] = st.get(r, 0) + 1; s.close()
time.sleep(0.5); print("(c) partial+SHUT_WR x%d: %s in %.2fs; held %d fds %d" % (N, st, time.time() - t0, len(held_conns(h)), h.fds()), flush=True)
# (b)
keep = []
for i in range(N):
    s = connect(h, rcvbuf=2048); s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); s.shutdown(socket.SHUT_WR); keep.append(s)
time.sleep(1); t0 = time.time(); c0 = cpu()
print("(b) %d SHUT_WR'd scrapers not reading: held %d, fds %d" % (N, len(held_conns(h)), h.fds()), flush=True)
for k in range(4):
    time.sleep(8)
    m = timed_get(h, "/metrics", timeout=10); hz = timed_get(h, "/healthz", timeout=10)
    print("  t=%.0fs held %d fds %d cpu %.1f%% /metrics %s %.2fs /healthz %s %.2fs WARN %d" % (time.time() - t0, len(held_conns(h)), h.fds(), 100 * (cpu() - c0) / (time.time() - t0), m[0], m[1], hz[0], hz[1], len(warns(h))), flush=True)
S = h.samples(); print("  cut_total", pick(S, "actor_metrics_http_connections_cut_total"), "aborted", pick(S, "actor_metrics_http_scrapes_aborted_total"))
# (d) again, then SIGTERM
for s in keep: s.close()
keep = []
for i in range(N):
    s = connect(h, rcvbuf=2048); s.sendall(b"GET /metrics?detail=off HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); s.shutdown(socket.SHUT_WR); keep.append(s)
time.sleep(2); print("(d) held %d before SIGTERM" % len(held_conns(h)), flush=True)
t0 = time.time(); rc = h.term(30); print("(d) SIGTERM -> rc %s after %.2fs" % (rc, time.time() - t0))
w = warns(h); print("WARN/ERROR %d" % len(w)); 
import collections; print(collections.Counter(l.split(" WARN ")[-1][:140] if " WARN " in l else l[:140] for l in w).most_common(6))
print("panic" in h.log())
