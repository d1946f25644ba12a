"""Area 1: bursts of N actors created (+1 increment), then all destroyed; after
retention+sweep, record RSS and retained sets. Restart on the same data dir
half-way. Also keeps 1 of every K alive per burst (fragmentation of slab chunks)."""
import sys, threading, time, http.client, json
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from ah import Host, parse, pick, q
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
B = int(sys.argv[2]) if len(sys.argv) > 2 else 6
KEEP = int(sys.argv[3]) if len(sys.argv) > 3 else 0   # keep every KEEP-th alive
flags = ["--retention", "2s", "--sweep-interval", "1s", "--idle-timeout", "never"]
h = Host(*flags); dd = h.data_dir
fails = []; kept = []
def run(keys, fn, nt=6):
    def w(part):
        a, p = h.app.rsplit(":", 1); c = http.client.HTTPConnection(a, int(p), timeout=60)
        for k in part:
            for m, path, b in fn(k):
                c.request(m, path, body=b); r = c.getresponse(); d = r.read()
                if r.status != 200: fails.append((m, path[:60], r.status, d[:100]))
    ts = [threading.Thread(target=w, args=(keys[i::nt],)) for i in range(nt)]
    [t.start() for t in ts]; [t.join() for t in ts]
mk = lambda k: [("POST", "/actors/counter/" + q(k), None), ("POST", "/actors/counter/%s/actions/increment" % q(k), "{}")]
rm = lambda k: [("DELETE", "/actors/counter/" + q(k), None)]
def state():
    s = h.samples()
    ret = {dict(l)["state"]: int(v) for l, v in pick(s, "actor_metrics_retained_label_sets").items()}
    return ret, int(sum(pick(s, "actor_type_action_calls_total").values()))
for b in range(B):
    if b == B // 2:
        print("restart on same data dir", flush=True); h.term(); h = Host(*flags, data_dir=dd)
        print("after restart rss=%d retained=%s" % (h.rss_kb(), state()), flush=True)
    keys = ["b%d-%d~k" % (b, i) for i in range(N)]
    t0 = time.time(); run(keys, mk); t1 = time.time()
    peak = h.rss_kb()
    ret_live = state()
    dkeys = [k for i, k in enumerate(keys) if not (KEEP and i % KEEP == 0)]
    kept += [k for k in keys if k not in set(dkeys)]
    run(dkeys, rm); time.sleep(4)
    ret, calls = state()
    print("burst %d: create %.1fs peak rss=%d live=%s | after destroy+4s rss=%d retained=%s type_calls=%d fails=%d" % (
        b, t1 - t0, peak, ret_live[0], h.rss_kb(), ret, calls, len(fails)), flush=True)
print("fails sample", fails[:5])
h.term()
