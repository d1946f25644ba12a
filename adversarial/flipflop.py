"""Scrape a churning host every 200 ms: no series may vanish and come back,
no counter (per actor or actor_type_*) may go down, and gauges of a stopped
actor (actor_active 0) must be 0.

python3 flipflop.py [METRICS_ADDR|-] [seconds] [query]
(no address or `-`: starts its own host running the demo workload, with a
short retention so series do go away)
"""
import sys, time, urllib.request
from ah import Host, parse
own = None
if len(sys.argv) < 2 or sys.argv[1] == "-":
    own = Host("--retention", "2s", "--sweep-interval", "500ms", "--idle-timeout", "1s", workload="demo")
    addr = own.metrics
else:
    addr = sys.argv[1]
S = float(sys.argv[2]) if len(sys.argv) > 2 else 30
qs = sys.argv[3] if len(sys.argv) > 3 else ""
last_seen = {}; gone = set(); last = {}; problems = []; n = 0
GAUGES = ("actor_queue_depth", "actor_connections_active", "actor_inbox_depth", "actor_user_tasks_active")
t0 = time.time()
while time.time() - t0 < S:
    s = parse(urllib.request.urlopen("http://%s/metrics%s" % (addr, qs), timeout=30).read().decode())
    n += 1
    keys = set(s)
    for k in keys & gone:
        problems.append("scrape %d: series came back: %s %s" % (n, k[0], dict(k[1])))
    gone |= set(last) - keys
    gone -= keys
    active = {}
    for (name, l), v in s.items():
        if name.endswith("_total") or name.endswith("_count") or name.endswith("_sum") or name.endswith("_bucket"):
            if name.startswith("actor_metrics_http"):
                continue
            p = last.get((name, l))
            if p is not None and v < p:
                problems.append("scrape %d: counter went down %s %s: %s -> %s" % (n, name, dict(l), p, v))
        if name == "actor_active":
            active[frozenset(x for x in l)] = v
    for (name, l), v in s.items():
        if name in GAUGES and v != 0:
            base = frozenset(x for x in l if x[0] in ("actor_id_gen", "actor_key", "envoy_key"))
            if active.get(base) == 0:
                problems.append("scrape %d: gauge %s %s = %s on a stopped actor" % (n, name, dict(l), v))
    last = s
    time.sleep(0.2)
print("%d scrapes, %d series in the last" % (n, len(last)))
if own:
    if own.proc.poll() is not None: problems.append("host died: rc=%s" % own.proc.returncode)
    own.term()
print("PROBLEMS:" if problems else "OK", *problems[:30], sep="\n")
sys.exit(1 if problems else 0)
