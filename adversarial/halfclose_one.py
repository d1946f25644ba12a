"""One request then shutdown(SHUT_WR), as `nc -N`, some HTTP/1.0 tools and proxies do. What comes back?"""
from netclients import *
h = Host("--idle-timeout", "never", workload="none")
bulk(h, ["H%04d" % i for i in range(300)])
for path in ["/metrics", "/metrics?detail=full", "/actors", "/actors/top", "/healthz", "/readyz"]:
    for ver, extra in [("1.1", ""), ("1.1", "Connection: close\r\n"), ("1.0", "")]:
        s = connect(h); s.settimeout(30)
        s.sendall(("GET %s HTTP/%s\r\nHost: x\r\n%s\r\n" % (path, ver, extra)).encode()); s.shutdown(socket.SHUT_WR)
        raw = b""
        while True:
            try: d = s.recv(1 << 20)
            except Exception as e: raw += ("<%r>" % e).encode(); break
            if not d: break
            raw += d
        print("%-22s HTTP/%s %-20s -> %7d bytes, first line %r, ends %r" % (path, ver, extra.strip() or "-", len(raw), raw.split(b"\r\n")[0][:40], raw[-7:]))
sm = h.samples(); print("scrapes", pick(sm, "actor_metrics_http_scrapes_total"), "aborted", pick(sm, "actor_metrics_http_scrapes_aborted_total"))
print("rc", h.term())
