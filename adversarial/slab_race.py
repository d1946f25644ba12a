"""Area 1: 8 clients hammer the same 6 keys with create/increment/fail/sleep/destroy at random;
idle-timeout 300ms makes generations. Long retention keeps every generation; per key the sum
over generations of actor_action_calls_total must equal calls answered 200/422."""
import sys, threading, time, random, http.client, json, collections
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from ah import Host, parse, pick, q
S = float(sys.argv[1]) if len(sys.argv) > 1 else 30
h = Host("--retention", "5m", "--idle-timeout", "300ms", "--sweep-interval", "1s")
keys = ["r0", "r~1", "r 2", "r%3", "r&4", "r€5"]
def esc(k): return k.replace("~", "~~")
lock = threading.Lock(); ok = collections.Counter(); st = collections.Counter(); igmap = {}; problems = []
stop = threading.Event()
def w(tid):
    a, p = h.app.rsplit(":", 1); c = http.client.HTTPConnection(a, int(p), timeout=30); rnd = random.Random(tid)
    while not stop.is_set():
        k = rnd.choice(keys); x = rnd.random()
        if x < 0.05: m, path, b, kind = "DELETE", "/actors/counter/" + q(k), None, "destroy"
        elif x < 0.15: m, path, b, kind = "POST", "/actors/counter/" + q(k), None, "create"
        elif x < 0.2: m, path, b, kind = "POST", "/actors/counter/%s/sleep" % q(k), None, "sleep"
        elif x < 0.3: m, path, b, kind = "POST", "/actors/counter/%s/actions/fail" % q(k), "{}", "fail"
        else: m, path, b, kind = "POST", "/actors/counter/%s/actions/increment" % q(k), "{}", "increment"
        c.request(m, path, body=b); r = c.getresponse(); d = r.read()
        with lock:
            st[(kind, r.status)] += 1
            if kind in ("fail", "increment") and r.status in (200, 422): ok[k] += 1
            if kind == "create" and r.status == 200:
                j = json.loads(d); igmap["%s:%s" % (j["actor_id"], j["generation"])] = esc(k)
        if rnd.random() < 0.02: time.sleep(0.4)
last = {}
def scraper():
    while not stop.is_set():
        try: smp = h.samples()
        except Exception as e: problems.append("scrape %r" % e); continue
        with lock: m = dict(igmap)
        for (n, l), v in smp.items():
            d = dict(l); ig = d.get("actor_id_gen")
            if not ig: continue
            if d["actor_key"] not in [esc(k) for k in keys] and ig != "overflow": problems.append("unknown key %r" % d["actor_key"])
            if ig in m and m[ig] != d["actor_key"]: problems.append("MIX %s %s %r vs %r" % (n, ig, d["actor_key"], m[ig]))
            if n.endswith("_total"):
                if (n, l) in last and v < last[(n, l)]: problems.append("DECREASE %s %s" % (n, ig))
                last[(n, l)] = v
        time.sleep(0.3)
ts = [threading.Thread(target=w, args=(i,)) for i in range(8)] + [threading.Thread(target=scraper)]
[t.start() for t in ts]; time.sleep(S); stop.set(); [t.join() for t in ts]
time.sleep(1.5)
smp = h.samples()
bykey = collections.defaultdict(float); gens = collections.Counter(); ig2key = {}
for l, v in pick(smp, "actor_action_calls_total").items():
    d = dict(l); bykey[d["actor_key"]] += v; gens[d["actor_key"]] += 1
    if d["actor_id_gen"] in ig2key: problems.append("dup id_gen %s" % d["actor_id_gen"])
    ig2key[d["actor_id_gen"]] = d["actor_key"]
for k in keys:
    if bykey[esc(k)] != ok[k]: problems.append("key %r: metrics %s vs ok calls %d (generations %d)" % (k, bykey[esc(k)], ok[k], gens[esc(k)]))
tc = sum(pick(smp, "actor_type_action_calls_total").values())
print("type total", tc, "ok total", sum(ok.values()), "per-actor sum", sum(bykey.values()))
print("statuses", dict(st)); print("generations per key", dict(gens))
print("retained", {dict(l)["state"]: v for l, v in pick(smp, "actor_metrics_retained_label_sets").items()}, "rss", h.rss_kb())
lg = h.log(); print("log panics:", lg.count("panic"), "errors:", sum(1 for l in lg.splitlines() if " ERROR " in l))
print("\n".join([l[:250] for l in lg.splitlines() if " ERROR " in l or "panic" in l][:5]))
h.term()
print("PROBLEMS (%d):" % len(problems) if problems else "OK", *[p[:250] for p in problems[:20]], sep="\n")
