"""Every wake after an idle sleep is a new generation, so a new label set
retained for --retention. With a short --idle-timeout (0s is accepted), one
actor called steadily makes a new series set per call: cardinality follows
calls, not actors.

python3 idle_generations.py [idle_timeout] [calls] [gap_s]
"""
import sys, time
from ah import Host, pick
IT = sys.argv[1] if len(sys.argv) > 1 else "0s"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 200
GAP = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
h = Host("--idle-timeout", IT)
h.create("one")
t = time.time()
for i in range(N):
    s, b = h.call("one", "increment")
    assert s == 200, (s, b)
    if GAP: time.sleep(GAP)
secs = time.time() - t
s, b = h.create("one")
sm = h.samples()
sets = pick(sm, "actor_active", actor_key="one")
print("--idle-timeout %s: %d calls on ONE actor in %.1fs -> generation %s, %d label sets retained, %d per-actor series, value %s" % (
    IT, N, secs, b.get("generation"), len(sets), sum(1 for (n, l) in sm if ("actor_key", "one") in l), h.call("one", "get")[1]))
h.term()
