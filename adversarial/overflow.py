"""--max-retained 5 with 10 live actors: 5 land in the overflow label set.
Overflow gauges must be the sum of the live overflow registrations and drop
as they stop; aggregates stay exact; promtool (when installed) stays clean.
"""
import shutil, subprocess, sys, time
from ah import Host, pick, one
problems = []
h = Host("--max-retained", "5", "--retention", "3s", "--sweep-interval", "1s")
for i in range(10):
    h.create("o%d" % i)
    h.call("o%d" % i, "connect")
s = h.samples()
ov = {l: v for l, v in pick(s, "actor_active").items() if ("actor_id_gen", "overflow") in l}
print("overflow actor_active:", ov)
print("overflow_total:", one(s, "actor_metrics_overflow_total"))
if one(s, "actor_metrics_overflow_total") != 5: problems.append("overflow_total %s, want 5" % one(s, "actor_metrics_overflow_total"))
if one(s, "actor_type_connections_active", actor_name="counter") != 10: problems.append("type connections not 10")
print("overflow conns:", {dict(l)["actor_key"]: v for l, v in pick(s, "actor_connections_active").items() if ("actor_id_gen", "overflow") in l})
print("type connections:", one(s, "actor_type_connections_active", actor_name="counter"))
for i in range(10):
    h.sleep("o%d" % i)
s = h.samples()
g = [(n, dict(l), v) for (n, l), v in s.items() if v != 0 and n in ("actor_active", "actor_connections_active", "actor_type_connections_active", "actor_type_active")]
print("nonzero gauges after all slept:", g)
if g: problems.append("gauges left: %s" % g)
# wake them all again: now 5 expiring sets are evicted early
for i in range(10):
    h.call("o%d" % i, "get")
s = h.samples()
print("evicted_early:", one(s, "actor_metrics_evicted_early_total"), "retained:", pick(s, "actor_metrics_retained_label_sets"))
txt = h.scrape("?detail=full")
if shutil.which("promtool"):
    r = subprocess.run(["promtool", "check", "metrics"], input=txt.encode(), capture_output=True)
    print("promtool:", r.returncode, r.stdout.decode()[:300], r.stderr.decode()[:300])
    if r.returncode != 0: problems.append("promtool rc %d" % r.returncode)
else:
    print("promtool not installed: its check skipped")
print("by key o7:", len(h.scrape("?actor_key=o7").splitlines()))
h.term()
print("PROBLEMS" if problems else "OK", problems)
sys.exit(1 if problems else 0)
