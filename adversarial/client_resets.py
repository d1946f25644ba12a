"""Client resets (SO_LINGER 0 close) at various points of a scrape. Per case: how fast is the host's socket gone,
and which self-metric counts it (scrapes_total = 'served to the last byte', aborted, cut)? args: [actors]"""
import sys; sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from netclients import *
NA = int(sys.argv[1]) if len(sys.argv) > 1 else 300
h = Host("--idle-timeout", "never", workload="none")
bulk(h, ["R%04d" % i for i in range(NA)])
fd0 = h.fds()
def ctr():
    S = h.samples()
    g = lambda n: sum(v for (k, l), v in S.items() if k == n)
    return (g("actor_metrics_http_scrapes_total"), g("actor_metrics_http_scrapes_aborted_total"), g("actor_metrics_http_connections_cut_total"))
def rst(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"); s.close()
def gone_after(n_before, limit=40):
    t0 = time.time()
    while time.time() - t0 < limit:
        if len(held_conns(h)) <= n_before: return time.time() - t0
        time.sleep(0.05)
    return None
def case(name, path, rcv, read_bytes, wait, close_hdr, n=1):
    c0 = ctr(); base = len(held_conns(h))
    socks = []
    for i in range(n):
        s = connect(h, rcvbuf=rcv)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, "Connection: close\r\n" if close_hdr else "")).encode()); socks.append(s)
    got = [0] * n; t0 = time.time()
    while time.time() - t0 < wait:
        for i, s in enumerate(socks):
            if got[i] < read_bytes:
                s.settimeout(0.05)
                try: got[i] += len(s.recv(min(4096, read_bytes - got[i])))
                except socket.timeout: pass
        time.sleep(0.02)
    time.sleep(0.2)
    q = held_conns(h)
    sendq = sorted(int(l.split()[2]) for l in q)[-3:] if q else []
    for s in socks: rst(s)
    g = gone_after(base)
    time.sleep(0.3); c1 = ctr()
    print("%-38s n=%d read %d B each; host send-q before reset (top) %s; sockets gone after %s s; d(scrapes, aborted, cut) = %s; fds %d (idle %d)" % (
        name, n, got[0], sendq, "%.2f" % g if g is not None else ">40", tuple(int(b - a) - (1 if j == 0 else 0) for j, (a, b) in enumerate(zip(c0, c1))), h.fds(), fd0), flush=True)
print("sizes: /metrics %d B, detail=full %d B, detail=off %d B" % (len(h.scrape()), len(h.scrape("?detail=full")), len(h.scrape("?detail=off"))))
case("A mid-response, full, 4K window", "/metrics?detail=full", 4096, 100000, 2, False)
case("B mid-response, full, default window", "/metrics?detail=full", None, 100000, 2, False)
case("C linger: detail=off close, 2K win, 0 read", "/metrics?detail=off", 2048, 0, 1.5, True)
case("D linger: /metrics close, 2K win, 0 read", "/metrics", 2048, 0, 1.5, True)
case("E 32x mid-response full 4K", "/metrics?detail=full", 4096, 50000, 3, False, n=32)
case("F 200x linger detail=off 2K", "/metrics?detail=off", 2048, 0, 3, True, n=200)
print("after: /metrics", timed_get(h, "/metrics")[:2])
w = warns(h); print("WARN/ERROR %d" % len(w)); [print("  ", l[:250]) for l in w[:4]]
print("rc", h.term())
