"""One actor whose database file is damaged: every call to it wakes a new
generation (a durable catalogue write), fails to open, and leaves a new label
set retained for --retention. Clients retrying that one key churn through
generations and fill --max-retained, evicting the retained series of healthy
actors early (their final values are lost) and logging one ERROR per call.
(F2, until a6da482.) Holds now when: the broken key keeps one label set,
nothing is evicted early, all 50 healthy retained sets stay, and the ERROR
lines stay a handful (not one per call).

python3 broken_actor_storm.py [seconds] [max_retained]
"""
import os, sys, threading, time, http.client
from ah import Host, pick, one
S = float(sys.argv[1]) if len(sys.argv) > 1 else 10
CAP = sys.argv[2] if len(sys.argv) > 2 else "2000"
h = Host("--max-retained", CAP)
# 50 healthy actors that stop (their final values are retained for 10 minutes)
for i in range(50):
    h.create("ok%d" % i); h.call("ok%d" % i, "increment", {"by": 5}); h.sleep("ok%d" % i)
s, info = h.create("broken")
h.sleep("broken")
with open(os.path.join(h.data_dir, "counter", "%s.db" % info["actor_id"]), "r+b") as f:
    f.write(os.urandom(4096))
st, body = h.call("broken", "get")
print("call on the broken actor ->", st, body)
done = [0]; stop = threading.Event()
def w():
    a, p = h.app.rsplit(":", 1); c = http.client.HTTPConnection(a, int(p), timeout=30)
    while not stop.is_set():
        c.request("POST", "/actors/counter/broken/actions/get", body="{}"); r = c.getresponse(); r.read(); done[0] += 1
ts = [threading.Thread(target=w) for _ in range(4)]
[t.start() for t in ts]; time.sleep(S); stop.set(); [t.join() for t in ts]
sm = h.samples()
sets = len(pick(sm, "actor_active", actor_key="broken"))
evicted = one(sm, "actor_metrics_evicted_early_total")
healthy = sum(1 for l in pick(sm, "actor_active") if any(k == "actor_key" and v.startswith("ok") for k, v in l))
errors = sum(1 for l in h.log().splitlines() if "ERROR" in l)
print("%d calls in %ds on one broken actor" % (done[0], S))
print("label sets of key 'broken':", sets)
print("retained:", {dict(l)["state"]: v for l, v in pick(sm, "actor_metrics_retained_label_sets").items()}, "cap", CAP)
print("evicted_early:", evicted)
print("healthy actors' retained series left:", healthy, "of 50")
print("ERROR log lines:", errors)
st, info = h.create("broken")
print("generation now:", info)
h.term()
problems = []
if sets > 1: problems.append("%d label sets for the one broken key" % sets)
if evicted: problems.append("%d retained sets evicted early" % evicted)
if healthy != 50: problems.append("%d of 50 healthy retained sets left" % healthy)
if errors > 10: problems.append("%d ERROR lines for %d calls" % (errors, done[0]))
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
