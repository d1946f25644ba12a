"""Healthy keep-alive scraper: N actors, scrape QUERY every 1-5 s on ONE keep-alive conn for DUR s.
Optional RATE (bytes/s) to read body at a steady modest pace via raw socket. Usage: b1_keepalive.py N DUR QUERY [RATE]"""
import sys, os, time, random, socket, re
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from netclients import *
N, DUR, QUERY = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
RATE = int(sys.argv[4]) if len(sys.argv) > 4 else 0
h = Host(workload="none")
bulk(h, ["k%d" % i for i in range(N)])
print("host pid", h.pid, "metrics", h.metrics, flush=True)
s = connect(h)
buf = b""
def read_resp():
    global buf
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d: raise EOFError("closed before headers, buf=%r" % buf[:100])
        buf += d
    hdr, buf = buf.split(b"\r\n\r\n", 1)
    st = hdr.split(b"\r\n")[0]
    m = re.search(rb"(?i)content-length: *(\d+)", hdr)
    chunked = re.search(rb"(?i)transfer-encoding: *chunked", hdr)
    body = b""
    if m:
        n = int(m.group(1))
        while len(buf) < n:
            want = 65536 if not RATE else max(1, RATE // 10)
            t = time.time(); d = s.recv(want)
            if not d: raise EOFError("closed mid body %d/%d" % (len(buf), n))
            buf += d
            if RATE: time.sleep(max(0, len(d) / RATE - (time.time() - t)))
        body, buf = buf[:n], buf[n:]
    elif chunked:
        while True:
            while b"\r\n" not in buf:
                d = s.recv(max(1, RATE // 10) if RATE else 65536)
                if not d: raise EOFError("closed mid chunk")
                buf += d
                if RATE: time.sleep(len(d) / RATE)
            ln, rest = buf.split(b"\r\n", 1); n = int(ln, 16)
            while len(rest) < n + 2:
                t = time.time(); d = s.recv(max(1, RATE // 10) if RATE else 65536)
                if not d: raise EOFError("closed mid chunk body")
                rest += d
                if RATE: time.sleep(max(0, len(d) / RATE - (time.time() - t)))
            body += rest[:n]; buf = rest[n + 2:]
            if n == 0: break
    return st, hdr, body
t0 = time.time(); n = 0; fails = 0; sizes = []; durs = []
while time.time() - t0 < DUR:
    ts = time.time()
    try:
        s.sendall(b"GET /metrics%s HTTP/1.1\r\nHost: x\r\nUser-Agent: Prometheus/2.x\r\nAccept: text/plain\r\n\r\n" % QUERY.encode())
        st, hdr, body = read_resp()
        n += 1; sizes.append(len(body)); durs.append(time.time() - ts)
        if b"200" not in st or b"connection: close" in hdr.lower():
            fails += 1; print("t=%.1f bad %r" % (time.time() - t0, hdr[:200]), flush=True)
    except Exception as e:
        fails += 1; print("t=%.1f scrape %d FAILED %r" % (time.time() - t0, n, e), flush=True)
        s = connect(h); buf = b""
    if n % 20 == 0: print("t=%.1f n=%d last %d bytes %.2fs" % (time.time() - t0, n, sizes[-1] if sizes else 0, durs[-1] if durs else 0), flush=True)
    time.sleep(random.uniform(1, 5))
S = h.samples()
cut = sum(v for (k, l), v in S.items() if k.startswith("actor_metrics_http_connections_cut"))
ab = sum(v for (k, l), v in S.items() if k.startswith("actor_metrics_http_scrapes_aborted"))
print("RESULT scrapes=%d fails=%d bytes min/max %d/%d dur max %.2fs cut_total=%s aborted=%s" % (n, fails, min(sizes), max(sizes), max(durs), cut, ab))
print("WARN lines:", warns(h))
print("rc", h.term())
