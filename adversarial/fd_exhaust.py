"""With the open-file limit low (ulimit -n 700), the default --max-live-actors
is (700-256)/2 = 222. Fill the live actors, then hold many idle keep-alive
connections on the app port (which has no connection cap): what happens to
actor starts, commits, the metrics port and /healthz?
Holds when every increment and create answers 200 while the connections are
held, /healthz and /metrics answer 200 in under 1 s, and everything answers
200 after they close.

python3 fd_exhaust.py [nofile] [conns]
"""
import resource, socket, sys, time, json, collections
from ah import Host
NOFILE = int(sys.argv[1]) if len(sys.argv) > 1 else 700
CONNS = int(sys.argv[2]) if len(sys.argv) > 2 else 400
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, hard))
h = Host()
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
live = int([l for l in h.log().splitlines() if "max_live_actors" in l][0].split("max_live_actors=")[1].split()[0])
print("max_live_actors chosen:", live)
st = collections.Counter(); problems = []
for i in range(live):
    s, b = h.create("k%d" % i)
    st[s] += 1
print("creates:", st, "fds:", h.fds())
ah_, ap = h.app.rsplit(":", 1)
socks = []
for i in range(CONNS):
    try:
        s = socket.create_connection((ah_, int(ap)), timeout=2)
        socks.append(s)
    except Exception as e:
        print("client connect failed at", i, e)
        break
time.sleep(0.5)
print("held app connections:", len(socks), "host fds:", h.fds())
# now exercise the host
res = collections.Counter(); errs = collections.Counter()
for i in range(50):
    try:
        s, b = h.call("k%d" % i, "increment")
        res[s] += 1
        if s != 200: errs[str(b)[:120]] += 1
    except Exception as e:
        res[type(e).__name__] += 1
print("increments on live actors while fds are exhausted:", res, errs.most_common(3))
if res[200] != 50: problems.append("increments: %s %s" % (dict(res), errs.most_common(2)))
res = collections.Counter(); errs = collections.Counter()
for i in range(20):
    try:
        s, b = h.create("new%d" % i)
        res[s] += 1
        if s != 200: errs[str(b)[:160]] += 1
    except Exception as e:
        res[type(e).__name__] += 1
print("creates (LRU eviction + new db) while fds are exhausted:", res, errs.most_common(3))
if res[200] != 20: problems.append("creates: %s %s" % (dict(res), errs.most_common(2)))
for path in ["/healthz", "/metrics"]:
    try:
        t = time.time(); s, b = h.get_m(path, timeout=5); dt = time.time() - t
        print(path, s, "%.2fs" % dt, b[:80] if s != 200 else "")
        if s != 200 or dt > 1: problems.append("%s %s in %.2fs" % (path, s, dt))
    except Exception as e:
        print(path, "->", type(e).__name__)
        problems.append("%s -> %s" % (path, type(e).__name__))
for x in socks: x.close()
time.sleep(12)
res = collections.Counter()
for i in range(20):
    s, b = h.call("new%d" % i, "increment"); res[s] += 1
hz = h.get_m("/healthz")
print("after closing the connections:", res, "healthz", hz)
if res[200] != 20 or hz[0] != 200: problems.append("after closing: %s, healthz %s" % (dict(res), hz[0]))
print("\n".join(l for l in h.log().splitlines() if "WARN" in l or "ERROR" in l)[-2000:])
h.term()
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
