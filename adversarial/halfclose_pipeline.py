"""Keep-alive clients pipelining K scrapes, optionally half-closing (SHUT_WR) right after sending; and a
single request + SHUT_WR. Compare each response's body length to a normal scrape; tiny and default rcvbuf.
args: [actors] [k]"""
from netclients import *
import re
NA = int(sys.argv[1]) if len(sys.argv) > 1 else 300; K = int(sys.argv[2]) if len(sys.argv) > 2 else 4
h = Host("--idle-timeout", "never", workload="none")
bulk(h, ["P%04d" % i for i in range(NA)])
def split_responses(raw):
    out = []; i = 0
    while i < len(raw):
        he = raw.find(b"\r\n\r\n", i)
        if he < 0: out.append(("TRUNC-HEAD", len(raw) - i)); break
        head = raw[i:he].decode(errors="replace"); st = head.split("\r\n")[0]; j = he + 4; body = b""
        if "chunked" in head.lower():
            ok = False
            while True:
                le = raw.find(b"\r\n", j)
                if le < 0: break
                n = int(raw[j:le].split(b";")[0], 16); j = le + 2
                if n == 0:
                    ok = raw[j:j+2] == b"\r\n"; j += 2; break
                body += raw[j:j+n]; j += n + 2
            out.append((st, len(body), "term" if ok else "NO-TERM"))
        else:
            m = re.search(r"content-length: (\d+)", head, re.I); n = int(m.group(1)) if m else 0
            body = raw[j:j+n]; j += n; out.append((st, len(body), "cl" if len(body) == n else "SHORT"))
        i = j
    return out
for path in ["/metrics", "/metrics?detail=full", "/actors", "/healthz"]:
    ref = len(h.get_m(path)[1])
    for rb in [None, 4096]:
        for k, hc in [(1, True), (K, False), (K, True)]:
            s = connect(h, rcvbuf=rb); s.settimeout(60)
            last = "Connection: close\r\n" if not hc else ""
            reqs = ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path) * (k - 1) + ("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, last))
            s.sendall(reqs.encode())
            if hc: s.shutdown(socket.SHUT_WR)
            raw = b""; t0 = time.time()
            try:
                while True:
                    d = s.recv(1 << 20)
                    if not d: break
                    raw += d
            except Exception as e: raw += b""; print("  recv error", e)
            r = split_responses(raw); s.close()
            bad = [x for x in r if x[1] != ref or x[-1] in ("NO-TERM", "SHORT") or not x[0].endswith("200 OK")]
            print("%-22s rcvbuf=%-5s k=%d half-close=%-5s -> %d responses %s in %.2fs, normal %d B %s" % (
                path, rb, k, hc, len(r), [x[1:] for x in r], time.time() - t0, ref, "" if len(r) == k and not bad else "<-- PROBLEM %s" % bad[:2]), flush=True)
print("warns", warns(h)[:3]); print("rc", h.term())
