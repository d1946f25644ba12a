"""Area 1: concurrent create/increment/fail/destroy over distinct + shared keys,
concurrent scrapes checking label integrity, then exact totals."""
import sys, threading, time, random, http.client, json, itertools, collections
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from ah import Host, parse, pick, q
S = float(sys.argv[1]) if len(sys.argv) > 1 else 40
NT = int(sys.argv[2]) if len(sys.argv) > 2 else 6
h = Host("--retention", "2s", "--sweep-interval", "1s", *sys.argv[3:])
lock = threading.Lock()
idmap = {}            # id_gen -> escaped key
def esc(k):
    e = k.replace("~", "~~")
    return e if len(e.encode()) <= 256 else "LONG:" + e[:200]
def keq(exp, got):
    return got == exp or (exp.startswith("LONG:") and got.startswith(exp[5:]) and len(got.encode()) <= 256 + 17)
calls = collections.Counter(); errs = collections.Counter()   # by action
shared = ["sh%d" % i for i in range(10)] + ["sh~t", "sh %&#", "shé✓", "x" * 300]
shared_n = collections.Counter()
problems = []
stop = threading.Event(); ctr = itertools.count()
def conn():
    a, p = h.app.rsplit(":", 1); return http.client.HTTPConnection(a, int(p), timeout=30)
def req(c, m, path, b=None):
    c.request(m, path, body=b); r = c.getresponse(); d = r.read(); return r.status, d
for k in shared:
    s, d = h.create(k); assert s == 200, (s, d)
    idmap["%s:%s" % (d["actor_id"], d["generation"])] = esc(k)
cycles = [0]
def worker(tid):
    c = conn(); rnd = random.Random(tid)
    while not stop.is_set():
        if rnd.random() < 0.5:
            k = rnd.choice(shared)
            s, d = req(c, "POST", "/actors/counter/%s/actions/increment" % q(k), "{}")
            if s != 200: problems.append("shared inc %r -> %s %r" % (k, s, d[:200])); continue
            with lock: shared_n[k] += 1; calls["increment"] += 1
            continue
        k = "t%d~%d %s" % (tid, next(ctr), rnd.choice(["", "&", "#", "%2F", "ü"]))
        s, d = req(c, "POST", "/actors/counter/" + q(k))
        if s != 200: problems.append("create %r -> %s %r" % (k, s, d[:200])); continue
        d = json.loads(d); ig = "%s:%s" % (d["actor_id"], d["generation"])
        with lock:
            if ig in idmap and idmap[ig] != esc(k): problems.append("id_gen reuse %s %r %r" % (ig, idmap[ig], k))
            idmap[ig] = esc(k)
        n = rnd.randint(1, 5)
        for i in range(1, n + 1):
            s, d = req(c, "POST", "/actors/counter/%s/actions/increment" % q(k), "{}")
            with lock: calls["increment"] += 1
            v = json.loads(d).get("result", {}).get("value")
            if s != 200 or v != i: problems.append("inc %r #%d -> %s %r" % (k, i, s, d[:200]))
        if rnd.random() < 0.3:
            s, d = req(c, "POST", "/actors/counter/%s/actions/fail" % q(k), "{}")
            with lock: calls["fail"] += 1; errs["fail"] += 1
        s, d = req(c, "DELETE", "/actors/counter/" + q(k))
        if s != 200: problems.append("destroy %r -> %s %r" % (k, s, d[:200]))
        cycles[0] += 1
last = {}
scrapes = [0]
def scraper():
    while not stop.is_set():
        try: smp = h.samples("?detail=full" if scrapes[0] % 2 else "")
        except Exception as e: problems.append("scrape: %r" % e); continue
        scrapes[0] += 1
        with lock: m = dict(idmap)
        for (n, l), v in smp.items():
            d = dict(l)
            ig = d.get("actor_id_gen")
            if not ig or ig == "overflow": continue
            if ig in m and not keq(m[ig], d["actor_key"]):
                problems.append("MIX %s %s key=%r expected %r" % (n, ig, d["actor_key"], m[ig]))
            if n.endswith("_total") or n.endswith("_count"):
                kk = (n, l)
                if kk in last and v < last[kk]: problems.append("DECREASE %s %s %s->%s" % (n, ig, last[kk], v))
                last[kk] = v
        time.sleep(0.2)
ts = [threading.Thread(target=worker, args=(i,)) for i in range(NT)] + [threading.Thread(target=scraper)]
[t.start() for t in ts]
t0 = time.time()
while time.time() - t0 < S:
    time.sleep(5)
    print("t=%3d cycles=%d scrapes=%d rss=%d KB problems=%d" % (time.time() - t0, cycles[0], scrapes[0], h.rss_kb(), len(problems)), flush=True)
stop.set(); [t.join() for t in ts]
time.sleep(4)  # retention 2s + sweep 1s
smp = h.samples()
for k in shared:
    got = pick(smp, "actor_action_calls_total", actor_key=esc(k))
    if k.startswith("x"):
        s, d = h.get_m("/metrics?actor_key=" + q(k)); got = pick(parse(d.decode()), "actor_action_calls_total")
    vals = list(got.values())
    if vals != [shared_n[k]]: problems.append("shared %r: calls series %s expected %d" % (k[:20], vals, shared_n[k]))
    s, d = h.call(k, "get") if False else (None, None)
tc = {dict(l)["action"]: v for l, v in pick(smp, "actor_type_action_calls_total").items() if v}
te = {dict(l)["action"]: v for l, v in pick(smp, "actor_type_action_errors_total").items() if v}
print("type calls", tc, "expected", dict(calls)); print("type errors", te, "expected", dict(errs))
if tc != {k: float(v) for k, v in calls.items()}: problems.append("type calls %s != %s" % (tc, dict(calls)))
if te != {k: float(v) for k, v in errs.items()}: problems.append("type errors %s != %s" % (te, dict(errs)))
sh_ids = {ig for ig, k in idmap.items() if k in {esc(x) for x in shared}}
left = {dict(l)["actor_id_gen"] for (n, l) in smp if "actor_id_gen" in dict(l)} - sh_ids
if left: problems.append("%d destroyed actors still have series after retention: %s" % (len(left), sorted(left)[:5]))
ret = {dict(l)["state"]: v for l, v in pick(smp, "actor_metrics_retained_label_sets").items()}
print("retained", ret, "cycles", cycles[0], "rss", h.rss_kb())
h.term()
print("PROBLEMS (%d):" % len(problems) if problems else "OK", *[p[:300] for p in problems[:30]], sep="\n")
