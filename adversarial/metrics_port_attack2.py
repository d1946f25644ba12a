"""More metrics-port clients: idle-connection flood and slowloris vs /healthz,
HEAD and Accept-Encoding corners, HTTP/1.0 scrapes, a scrape cut by the write
timeout, a scrape cut by shutdown (must not look complete).

Holds when: HEAD answers 200 with no body; every Accept-Encoding answers 200
and decodes; the HTTP/1.0 scrape is whole and counted once; /healthz answers
200 in under 1 s through the idle flood and the slowloris flood (the
probe-slot fix); the unread scrape is cut and counted aborted once; at
SIGTERM the host exits 0 and the stalled body ends cut (no last chunk); no
panic or ERROR line.

python3 metrics_port_attack2.py [actors] [skip_write_timeout]
"""
import gzip, http.client, socket, sys, threading, time
from ah import Host, parse, one

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
SKIP_WT = len(sys.argv) > 2
h = Host("--per-actor-detail", "full", "--idle-timeout", "never", "--shutdown-timeout", "1s")
from mass_create import run
run(h.app, N, 8, prefix="k")
MH, MP = h.metrics.rsplit(":", 1); MP = int(MP)
problems = []


def req(path, method="GET", headers=None, timeout=60):
    c = http.client.HTTPConnection(MH, MP, timeout=timeout)
    c.request(method, path, headers=headers or {})
    r = c.getresponse(); d = r.read(); c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), d


def counters():
    s = parse(req("/metrics?detail=off")[2].decode())
    return one(s, "actor_metrics_http_scrapes_total"), one(s, "actor_metrics_http_scrapes_aborted_total")


def raw(data, wait=3.0, rcvbuf=None):
    s = socket.create_connection((MH, MP), timeout=wait)
    if rcvbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.sendall(data); out = b""; t = time.time()
    try:
        while time.time() - t < wait:
            x = s.recv(1 << 20)
            if not x: break
            out += x
    except socket.timeout:
        pass
    s.close(); return out


# ---- HEAD and Accept-Encoding corners
c0, a0 = counters()
for ae in [None, "gzip"]:
    hd = raw(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n" + (b"Accept-Encoding: %s\r\n" % ae.encode() if ae else b"") + b"Connection: close\r\n\r\n")
    print("HEAD ae=%s ->" % ae, hd.decode().replace("\r\n", " | ")[:300])
    if not hd.startswith(b"HTTP/1.1 200") or not hd.endswith(b"\r\n\r\n"):
        problems.append("HEAD ae=%s: %r" % (ae, hd[-40:]))
c1, a1 = counters()
print("HEAD x2: scrapes_total +%d, aborted +%d" % (c1 - c0 - 1, a1 - a0))
for ae in ["gzip;q=0", "GZIP", "br", "*", "identity;q=0", "gzip;q=0, *", "x-gzip", "gzip;q=0.0001", "deflate, gzip;q=abc", ""]:
    st, hd, d = req("/metrics?actor_key=k1", headers={"Accept-Encoding": ae})
    ok = True
    if hd.get("content-encoding") == "gzip":
        try: d = gzip.decompress(d)
        except Exception as e: ok = False
    print("Accept-Encoding %-22r -> %d ce=%s decodes=%s %d B" % (ae, st, hd.get("content-encoding"), ok, len(d)))
    if st != 200 or not ok: problems.append("Accept-Encoding %r: %d decodes=%s" % (ae, st, ok))

# ---- HTTP/1.0 scrape: close-delimited body, complete and counted
c0, a0 = counters()
out = raw(b"GET /metrics HTTP/1.0\r\n\r\n", wait=20)
head, _, body = out.partition(b"\r\n\r\n")
c1, a1 = counters()
print("HTTP/1.0 scrape: %s, body %d B, ends with newline %s, parses %d series; scrapes +%d aborted +%d" % (
    head.split(b"\r\n")[0].decode(), len(body), body.endswith(b"\n"), len(parse(body.decode())), c1 - c0 - 1, a1 - a0))
if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200") or not body.endswith(b"\n") or c1 - c0 - 1 != 1 or a1 != a0:
    problems.append("HTTP/1.0 scrape: %r, scrapes +%d, aborted +%d" % (head[:20], c1 - c0 - 1, a1 - a0))

# ---- idle connection flood and slowloris vs /healthz
socks = []
for i in range(300):
    try:
        socks.append(socket.create_connection((MH, MP), timeout=1))
    except OSError as e:
        print("connect %d: %s" % (i, e)); break
lat = []
for i in range(4):
    t = time.time()
    try:
        st = req("/healthz", timeout=10)[0]
    except Exception as e:
        st = type(e).__name__
    lat.append((st, round(time.time() - t, 2)))
    time.sleep(0.5)
print("300 idle connections opened: /healthz answers %s" % lat)
if any(st != 200 or t > 1 for st, t in lat): problems.append("idle flood: /healthz %s" % lat)
for s in socks: s.close()
time.sleep(6)
# slowloris: one byte per 0.5 s on 300 connections, reopened when cut
stop = threading.Event(); cut = [0]
def loris():
    s = None; msg = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 1000
    i = 0
    while not stop.is_set():
        try:
            if s is None:
                s = socket.create_connection((MH, MP), timeout=2); i = 0
            s.send(msg[i % len(msg):i % len(msg) + 1]); i += 1
            time.sleep(0.5)
        except OSError:
            cut[0] += 1; s = None
ts = [threading.Thread(target=loris, daemon=True) for _ in range(300)]
[t.start() for t in ts]
time.sleep(2)
lat = []
for i in range(6):
    t = time.time()
    try:
        st = req("/healthz", timeout=10)[0]
    except Exception as e:
        st = type(e).__name__
    lat.append((st, round(time.time() - t, 2)))
    time.sleep(1)
stop.set(); time.sleep(1)
print("300 slowloris clients: /healthz answers %s; loris connections cut %d" % (lat, cut[0]))
if any(st != 200 or t > 1 for st, t in lat): problems.append("slowloris: /healthz %s" % lat)
time.sleep(6)

# ---- write timeout: a scrape never read is cut after 30 s and counted as aborted once
if not SKIP_WT:
    c0, a0 = counters()
    s = socket.create_connection((MH, MP)); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(33)
    c1, a1 = counters()
    s.settimeout(5); got = b""
    try:
        while True:
            x = s.recv(1 << 20)
            if not x: break
            got += x
    except Exception as e:
        got += b"<%s>" % type(e).__name__.encode()
    print("unread scrape after 33 s: aborted +%d, scrapes +%d; client then got %d B, ends %r" % (a1 - a0, c1 - c0 - 1, len(got), got[-12:]))
    if a1 - a0 != 1 or c1 - c0 - 1 != 0 or got.endswith(b"\r\n0\r\n\r\n"):
        problems.append("write timeout: aborted +%d, scrapes +%d" % (a1 - a0, c1 - c0 - 1))

# ---- shutdown with a stalled scrape: the body must end cut, not with the last chunk
# (first wait until the floods' connections are gone: an ordinary slot, not a probe slot)
t = time.time()
while time.time() - t < 30:
    try:
        if req("/metrics?detail=off", timeout=5)[0] == 200: break
    except OSError:
        pass
    time.sleep(0.5)
s = socket.create_connection((MH, MP)); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(0.5)
h.proc.send_signal(15)
t = time.time(); h.proc.wait(60)
print("host exited %d in %.1fs with a stalled scrape" % (h.proc.returncode, time.time() - t))
got = b""; s.settimeout(5)
try:
    while True:
        x = s.recv(1 << 20)
        if not x: break
        got += x
except Exception as e:
    got += b"<%s>" % type(e).__name__.encode()
print("stalled scrape got %d B: %r ...; ends with the last-chunk marker: %s; tail %r" % (len(got), got[:15], got.endswith(b"\r\n0\r\n\r\n"), got[-20:]))
if not got.startswith(b"HTTP/1.1 200"): problems.append("the stalled scrape was not a scrape: %r" % got[:240])
log = h.log()
bad_lines = [l for l in log.splitlines() if "panick" in l or "ERROR" in l]
print("log panics/ERROR:", bad_lines[:3])
if h.proc.returncode != 0: problems.append("exit %s at SIGTERM" % h.proc.returncode)
if got.endswith(b"\r\n0\r\n\r\n"): problems.append("the stalled scrape cut by shutdown looks complete")
if bad_lines: problems.append("panic/ERROR lines: %s" % bad_lines[:2])
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
