"""Area 3: --max-promoted 4, 30 actors failing ~30% + healthy ones; sample the promoted set
each tick for ~T ticks; at tick T/2 add one actor failing 100%; count set changes and log lines."""
import sys, threading, time, http.client, itertools, json, random
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from ah import Host, parse, pick, q
T = int(sys.argv[1]) if len(sys.argv) > 1 else 30
extra = sys.argv[2:]
import os; DESTROY = os.environ.get("DESTROY") == "1"
h = Host("--max-promoted", "4", "--promotion-tick", "1s", "--promotion-window", "5s", "--promotion-min-calls", "5",
         "--promotion-error-factor", "2", *extra)
bad = ["bad%02d" % i for i in range(30)]; good = ["good%d" % i for i in range(10)]
for k in bad + good + ["worst"]: h.create(k)
errs = []; stop = threading.Event(); worst_on = threading.Event(); n = [0]
def w(tid):
    a, p = h.app.rsplit(":", 1); c = http.client.HTTPConnection(a, int(p), timeout=30); i = tid
    rnd = random.Random(tid)
    while not stop.is_set():
        i += 1
        seq = [(k, "fail" if (i + j) % 10 < 3 else "increment") for j, k in enumerate(bad[tid::3])]
        seq += [(k, "increment") for k in good for _ in range(2)]
        if worst_on.is_set() and tid == 0: seq += [("worst", "fail")] * 2
        rnd.shuffle(seq)
        for k, act in seq:
            c.request("POST", "/actors/counter/%s/actions/%s" % (q(k), act), body="{}"); r = c.getresponse(); r.read(); n[0] += 1
            if r.status not in (200, 422): errs.append((k, act, r.status))
        time.sleep(0.15)
ts = [threading.Thread(target=w, args=(i,)) for i in range(3)]; [t.start() for t in ts]
prev = None; changes = 0; hist = []
t0 = time.time()
for tick in range(T):
    if tick == T // 2: worst_on.set(); print("-- worst starts failing every call", flush=True)
    time.sleep(1)
    if tick == T - 8 and DESTROY:
        for k in sorted(prev - {"worst"})[:2]:
            print("-- destroying promoted", k, h.destroy(k)[0], flush=True)
    s = h.samples()
    cur = frozenset(dict(l)["actor_key"] for l, v in pick(s, "actor_detail_promoted").items() if v == 1)
    if prev is not None and cur != prev: changes += 1
    top = json.loads(h.get_m("/actors/top?by=error_ratio&n=6")[1])["rows"]
    print("tick %2d calls=%d promoted=%s top=%s" % (tick, n[0], sorted(cur), [(r["actor_key"], round(r["figure"], 3), r["promoted"]) for r in top[:6]]), flush=True)
    prev = cur; hist.append(cur)
stop.set(); [t.join() for t in ts]
log = h.log()
print("non-200/422 calls:", len(errs), errs[:3]); print("set changes:", changes, "| log promoted lines:", log.count("actor promoted"), "demoted lines:", log.count("demoted"))
print("worst promoted at end:", "worst" in hist[-1], "| ever:", any("worst" in x for x in hist))
print("\n".join([l[:300] for l in log.splitlines() if "promot" in l or "demot" in l][:20]))
h.term()
