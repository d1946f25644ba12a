"""Area 3: does a destroyed (or slept) promoted actor keep its promoted slot past --promotion-hold?"""
import sys, threading, time, http.client, json
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from ah import Host, pick, q
h = Host("--max-promoted", "2", "--promotion-tick", "1s", "--promotion-window", "5s", "--promotion-min-calls", "5",
         "--promotion-error-factor", "2", "--promotion-hold", "2s", *sys.argv[1:])
keys = ["p1", "p2", "p3", "good"]
for k in keys: h.create(k)
stop = threading.Event(); active = {"p1", "p2", "p3", "good"}
def w():
    a, p = h.app.rsplit(":", 1); c = http.client.HTTPConnection(a, int(p), timeout=30); i = 0
    while not stop.is_set():
        i += 1
        for k in list(active):
            for _ in range(1 if k != "good" else 6):
                act = "fail" if (k != "good" and i % 2 == 0) else "increment"
                c.request("POST", "/actors/counter/%s/actions/%s" % (q(k), act), body="{}"); r = c.getresponse(); r.read()
        time.sleep(0.05)
t = threading.Thread(target=w); t.start()
for tick in range(22):
    time.sleep(1)
    if tick == 5:
        s = h.samples(); cur = sorted(dict(l)["actor_key"] for l, v in pick(s, "actor_detail_promoted").items())
        victim = cur[0]; active.discard(victim); time.sleep(0.2)
        print("-- destroying promoted", victim, h.destroy(victim)[0], flush=True)
    s = h.samples()
    cur = sorted((dict(l)["actor_key"], dict(l)["actor_id_gen"]) for l, v in pick(s, "actor_detail_promoted").items())
    rows = json.loads(h.get_m("/actors/top?by=error_ratio&n=5")[1])["rows"]
    print("tick %2d promoted=%s top=%s" % (tick, cur, [(r["actor_key"], round(r["figure"], 2), r["calls"], r["live"], r["promoted"]) for r in rows]), flush=True)
stop.set(); t.join()
print("\n".join(l[60:260] for l in h.log().splitlines() if "promoted to" in l or "demoted" in l))
h.term()
