"""Area 1: long churn (distinct keys, create/inc/destroy) with concurrent ?detail=full and ?actor_id_gen scrapes;
RSS / retained / removed every 10 s."""
import sys, threading, time, http.client, itertools, json, random
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from ah import Host, pick, parse, q
S = float(sys.argv[1]) if len(sys.argv) > 1 else 90
h = Host("--retention", "1s", "--sweep-interval", "1s", *sys.argv[2:])
stop = threading.Event(); ctr = itertools.count(); done = [0]; fails = []; recent = []; problems = []
def w():
    a, p = h.app.rsplit(":", 1); c = http.client.HTTPConnection(a, int(p), timeout=30)
    while not stop.is_set():
        k = "c%d~%s" % (next(ctr), "é" * random.randint(0, 150))
        c.request("POST", "/actors/counter/" + q(k)); r = c.getresponse(); d = r.read()
        if r.status != 200: fails.append(r.status); continue
        j = json.loads(d); recent.append(("%s:%s" % (j["actor_id"], j["generation"]), k)); del recent[:-50]
        for m, path, b in [("POST", "/actors/counter/%s/actions/increment" % q(k), "{}"), ("DELETE", "/actors/counter/" + q(k), None)]:
            c.request(m, path, body=b); r = c.getresponse(); r.read()
            if r.status != 200: fails.append(r.status)
        done[0] += 1
def sc():
    while not stop.is_set():
        try:
            h.scrape("?detail=full")
            if recent:
                ig, k = random.choice(recent)
                s, d = h.get_m("/metrics?actor_id_gen=" + q(ig)); sm = parse(d.decode())
                for (n, l) in sm:
                    dl = dict(l)
                    if dl.get("actor_id_gen") != ig or not k.replace("~", "~~").startswith(dl.get("actor_key", "")[:100]):
                        problems.append("one-actor scrape %s %r got %s %r" % (ig, k[:30], dl.get("actor_id_gen"), dl.get("actor_key", "")[:30])); break
        except Exception as e: problems.append("scrape %r" % e)
ts = [threading.Thread(target=w) for _ in range(5)] + [threading.Thread(target=sc)]
[t.start() for t in ts]; t0 = time.time(); rows = []
while time.time() - t0 < S:
    time.sleep(10); s = h.samples()
    ret = {dict(l)["state"]: int(v) for l, v in pick(s, "actor_metrics_retained_label_sets").items()}
    rows.append(h.rss_kb())
    print("t=%3d cycles=%6d fails=%d rss=%d KB fds=%d retained=%s problems=%d" % (time.time() - t0, done[0], len(fails), h.rss_kb(), h.fds(), ret, len(problems)), flush=True)
stop.set(); [t.join() for t in ts]
print("alive:", h.proc.poll() is None); h.term()
print("PROBLEMS:" if problems or fails else "OK", fails[:5], *[p[:200] for p in problems[:10]], sep="\n")
