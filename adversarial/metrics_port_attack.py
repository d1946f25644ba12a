"""Hostile and sloppy clients on the metrics port: gzip and protobuf bodies
against the identity text body, odd query strings, clients that disconnect
mid-body (aborted_total +1 each, scrapes_total +1 per completed scrape), 40
concurrent scrapes (503 + Retry-After past 32, /healthz still answers),
keep-alive route mixes, HEAD/POST, huge headers, RSS and the host's log.

python3 metrics_port_attack.py [actors]
"""
import gzip, http.client, socket, sys, threading, time, zlib
from ah import Host, parse, one
from mass_create import run
from proto_vs_text import decode, PB

N = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
problems = []
h = Host("--per-actor-detail", "full", "--idle-timeout", "never", "--max-live-actors", str(N + 10))
secs, bad = run(h.app, N, 8, prefix="k")
for i in range(20):
    h.call("k%d" % i, "increment", {"by": 3}); h.call("k%d" % i, "fail"); h.call("k%d" % i, "slow", {"ms": 2})
MH, MP = h.metrics.rsplit(":", 1); MP = int(MP)


def req(path, method="GET", headers=None, body=None, timeout=60):
    c = http.client.HTTPConnection(MH, MP, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse(); d = r.read(); c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), d


def counters():
    s = parse(req("/metrics?detail=off")[2].decode())
    return one(s, "actor_metrics_http_scrapes_total"), one(s, "actor_metrics_http_scrapes_aborted_total")


def keys(samples):
    return {k for k in samples if not k[0].startswith("actor_metrics_http")}


rss0 = h.rss_kb()
print("%d actors created in %.1fs (%d failures); RSS %d MB" % (N, secs, len(bad), rss0 // 1024))

# ---- 1. gzip / protobuf / identity bodies describe the same series
st, hd, ident = req("/metrics")
st2, hd2, gz = req("/metrics", headers={"Accept-Encoding": "gzip"})
st3, hd3, pb = req("/metrics", headers={"Accept": PB})
st4, hd4, pbgz = req("/metrics", headers={"Accept": PB, "Accept-Encoding": "gzip"})
print("identity %d %d B te=%s | gzip %d %d B ce=%s | proto %d %d B ct=%s | proto+gzip %d %d B" % (
    st, len(ident), hd.get("transfer-encoding"), st2, len(gz), hd2.get("content-encoding"), st3, len(pb),
    hd3.get("content-type"), st4, len(pbgz)))
t_ident = parse(ident.decode())
t_gz = parse(gzip.decompress(gz).decode())
if keys(t_ident) != keys(t_gz):
    problems.append("gzip series != identity series: %d vs %d, diff %s" % (
        len(keys(t_ident)), len(keys(t_gz)), list(keys(t_ident) ^ keys(t_gz))[:3]))
p_id = decode(pb); p_gz = decode(gzip.decompress(pbgz))
pk = {k for k in p_id if not k[0].startswith("actor_metrics_http")}
if pk != {k for k in p_gz if not k[0].startswith("actor_metrics_http")}:
    problems.append("protobuf+gzip families != protobuf families")
print("series: text %d, text+gzip %d; protobuf metrics %d, protobuf+gzip %d" % (
    len(keys(t_ident)), len(keys(t_gz)), len(pk), len(p_gz)))
if not ident.endswith(b"\n"):
    problems.append("identity body does not end in a newline")

# ---- 2. query strings
QS = ["?detail=", "?detail=FULL", "?detail=full&detail=full", "?detail=full&detail=", "?detail", "?detail=core",
      "?actor_key=", "?actor_key", "?actor_key=k1&actor_key=k1", "?actor_key=k1&actor_key=k2",
      "?actor_key=%6B1", "?actor_key=k%31", "?actor_key=k1%00", "?actor_key=%ZZ", "?actor_key=%C3%28",
      "?actor_key=k1&detail=off", "?actor_id_gen=", "?actor_id_gen=%3A", "?actor_id_gen=1:1", "?actor_key=+k1",
      "?detail%3Dfull", "?=", "?&&&", "?;", "?detail=full;x", "?%", "?actor_key=" + "x" * 60000,
      "?" + "actor_key&" * 6000, "?actor_key=" + "x" * 70000]
for q in QS:
    t = time.time()
    try:
        st, hd, d = req("/metrics" + q, timeout=60)
        extra = ""
        if st == 200:
            s = parse(d.decode())
            extra = "%d series, %d actor(s)" % (len(s), len({dict(l).get("actor_key") for (n, l) in s if n == "actor_active"}))
        else:
            extra = d[:80]
        print("%-40.40s -> %d %s (%.2fs)" % (q, st, extra, time.time() - t))
        if st >= 500:
            problems.append("query %r -> %d" % (q[:60], st))
    except Exception as e:
        print("%-40.40s -> %s" % (q, repr(e)[:100]))
        problems.append("query %r -> %r" % (q[:60], e))

# ---- 3. completed scrapes counted once each, aborts once each
def abort(kind):
    s = socket.create_connection((MH, MP))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hdrs = {"plain": "", "gzip": "Accept-Encoding: gzip\r\n", "proto": "Accept: %s\r\n" % PB,
            "protogzip": "Accept: %s\r\nAccept-Encoding: gzip\r\n" % PB}[kind.split("-")[0]]
    s.sendall(("GET /metrics HTTP/1.1\r\nHost: x\r\n%s\r\n" % hdrs).encode())
    if kind.endswith("-now"):
        pass
    else:
        got = 0
        while got < 3000:
            got += len(s.recv(1000))
    if kind.endswith("-rst"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def complete(kind):
    hdrs = {"plain": {}, "gzip": {"Accept-Encoding": "gzip"}, "proto": {"Accept": PB},
            "protogzip": {"Accept": PB, "Accept-Encoding": "gzip"}, "sel": {}}[kind]
    st, hd, d = req("/metrics" + ("?actor_key=k1" if kind == "sel" else ""), headers=hdrs)
    assert st == 200
    if "gzip" in kind:
        gzip.decompress(d)


def settle(want_aborts, c0, a0, timeout=15):
    t = time.time()
    while True:
        c, a = counters()
        if a - a0 >= want_aborts or time.time() - t > timeout:
            return c, a
        time.sleep(0.3)


for kinds, fn in [(["plain", "gzip", "proto", "protogzip", "sel"] * 3, complete),
                  (["plain", "gzip", "proto", "protogzip", "plain-now", "gzip-now", "plain-rst", "proto-rst"] * 2, abort)]:
    c0, a0 = counters()
    for k in kinds:
        fn(k)
    n_ab = len(kinds) if fn is abort else 0
    time.sleep(1)
    c1, a1 = settle(n_ab, c0, a0)
    # the scrape that read c0 counts once it completes (+1), as does the one reading c1 only after
    dc, da = c1 - c0 - 1, a1 - a0
    want_c = len(kinds) if fn is complete else 0
    print("%-8s x%d: scrapes_total +%d (want %d), aborted_total +%d (want %d)" % (fn.__name__, len(kinds), dc, want_c, da, n_ab))
    if dc != want_c or da != n_ab:
        problems.append("%s: scrapes +%d want %d, aborted +%d want %d" % (fn.__name__, dc, want_c, da, n_ab))

# ---- 4. 40 concurrent scrapes that do not read; then 40 that read
held = []; statuses = []
for i in range(40):
    s = socket.create_connection((MH, MP))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    held.append(s)
time.sleep(1.5)
n503 = 0; retry = 0
for s in held:
    s.settimeout(2)
    head = s.recv(4096)
    if head.startswith(b"HTTP/1.1 503"):
        n503 += 1; retry += b"retry-after: 1" in head.lower()
t = time.time(); st = req("/healthz", timeout=10)[0]; hz = time.time() - t
t = time.time(); st_r = req("/readyz", timeout=10)[0]; rz = time.time() - t
t = time.time(); st_m, hd_m, _ = req("/metrics", timeout=10); mz = time.time() - t
print("40 held scrapes: %d got 503 (%d with Retry-After: 1); /healthz %d in %.3fs, /readyz %d in %.3fs, 41st scrape %d %s in %.3fs" % (
    n503, retry, st, hz, st_r, rz, st_m, hd_m.get("retry-after"), mz))
if n503 != 8 or retry != 8 or st != 200 or hz > 1 or st_m != 503:
    problems.append("40 held scrapes: %d 503s, %d Retry-After, healthz %d %.2fs, 41st %d" % (n503, retry, st, hz, st_m))
for s in held:
    s.close()
time.sleep(1)
c0, a0 = counters()
res = []
def reader(i):
    try:
        st, hd, d = req("/metrics", headers={"Accept-Encoding": "gzip"} if i % 2 else {})
        if st == 200 and i % 2: gzip.decompress(d)
        res.append(st)
    except Exception as e:
        res.append(repr(e)[:60])
ts = [threading.Thread(target=reader, args=(i,)) for i in range(40)]
[x.start() for x in ts]; [x.join() for x in ts]
c1, a1 = counters()
ok = res.count(200)
print("40 concurrent reading scrapes: %d x 200, %d x 503, other %s; scrapes_total +%d (want %d), aborted +%d" % (
    ok, res.count(503), [r for r in res if r not in (200, 503)], c1 - c0 - 1, ok, a1 - a0))
if c1 - c0 - 1 != ok or a1 != a0:
    problems.append("concurrent: scrapes +%d for %d completed, aborted +%d" % (c1 - c0 - 1, ok, a1 - a0))

# ---- 5. keep-alive route mix on one connection, HEAD / POST
c = http.client.HTTPConnection(MH, MP, timeout=30)
seq = [("GET", "/metrics", {}, None), ("GET", "/healthz", {}, None), ("HEAD", "/metrics", {}, None),
       ("POST", "/metrics", {}, "x" * 1000), ("GET", "/readyz", {}, None), ("GET", "/metrics", {"Accept-Encoding": "gzip"}, None),
       ("GET", "/nope", {}, None), ("GET", "/metrics?detail=bogus", {}, None), ("HEAD", "/metrics", {"Accept-Encoding": "gzip"}, None),
       ("GET", "/metrics", {"Accept": PB}, None), ("PUT", "/healthz", {}, None), ("DELETE", "/metrics", {}, None),
       ("OPTIONS", "/metrics", {}, None), ("GET", "/metrics?actor_key=k2", {}, None), ("GET", "/healthz", {}, None)]
out = []
for m, p, hh, b in seq:
    c.request(m, p, body=b, headers=hh); r = c.getresponse(); d = r.read()
    out.append("%s %s %d %dB%s%s" % (m, p[:20], r.status, len(d), " allow=" + r.getheader("allow") if r.getheader("allow") else "",
                                     " cl=" + r.getheader("content-length") if r.getheader("content-length") else ""))
print("keep-alive mix:", "; ".join(out))

# ---- 6. huge / many headers
for name, hdrs in [("100 headers", "".join("X-H%d: v\r\n" % i for i in range(100))),
                   ("200 headers", "".join("X-H%d: v\r\n" % i for i in range(200))),
                   ("64 KB header", "X-Big: %s\r\n" % ("a" * 65536)),
                   ("1 MB header", "X-Big: %s\r\n" % ("a" * 1000000)),
                   ("Accept 20k items", "Accept: %s\r\n" % ",".join(["text/x;q=0.1"] * 20000)),
                   ("50 Accept-Encoding", "Accept-Encoding: identity\r\n" * 49 + "Accept-Encoding: gzip\r\n")]:
    s = socket.create_connection((MH, MP), timeout=10)
    try:
        s.sendall(("GET /metrics?actor_key=k3 HTTP/1.1\r\nHost: x\r\n%s\r\n" % hdrs).encode())
    except OSError as e:
        print(name, "send:", e)
    data = b""
    try:
        while True:
            x = s.recv(65536)
            if not x: break
            data += x
            if b"\r\n0\r\n\r\n" in data or (b"content-length: " in data.lower() and data.count(b"\r\n\r\n") >= 1 and not data.startswith(b"HTTP/1.1 200")):
                break
    except Exception as e:
        pass
    s.close()
    print("%-20s -> %s (%d B)" % (name, data.split(b"\r\n")[0].decode(errors="replace"), len(data)))
t = time.time(); print("healthz after header abuse:", req("/healthz")[0], "%.3fs" % (time.time() - t))

# ---- 7. RSS after many scrapes and aborts
for i in range(60):
    complete(["plain", "gzip", "proto", "protogzip"][i % 4]); abort(["plain", "gzip", "proto", "protogzip"][i % 4])
rss1 = h.rss_kb()
for i in range(60):
    complete(["plain", "gzip", "proto", "protogzip"][i % 4]); abort(["plain", "gzip", "proto", "protogzip"][i % 4])
rss2 = h.rss_kb()
print("RSS: %d MB at start, %d MB after 120 scrapes+aborts, %d MB after 240" % (rss0 // 1024, rss1 // 1024, rss2 // 1024))
log = h.log()
bad_lines = [l for l in log.splitlines() if "panick" in l or "ERROR" in l]
print("log: %d lines, %d panic/ERROR: %s" % (len(log.splitlines()), len(bad_lines), bad_lines[:3]))
print("host alive:", h.proc.poll() is None)
if h.proc.poll() is not None: problems.append("host died")
if bad_lines: problems.append("panic/ERROR log lines: %s" % bad_lines[:2])
if rss2 - rss1 > 16 * 1024: problems.append("RSS grew %d MB over the second 120 scrapes+aborts" % ((rss2 - rss1) // 1024))
h.term()
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
