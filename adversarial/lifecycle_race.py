"""Hammer a few keys with concurrent create / increment / sleep / destroy /
connect / spawn_task / enqueue / panic, then check the host's own invariants:
no 5xx other than documented ones, files on disk == catalogue rows, and once
every actor is asleep every per-actor and per-type gauge is 0 and
actor_type_active matches GET /actors.

python3 lifecycle_race.py [seconds] [extra host flags...]
"""
import collections
import http.client
import json
import os
import random
import sqlite3
import sys
import threading
import time

from ah import Host, q, parse, pick

SECS = float(sys.argv[1]) if len(sys.argv) > 1 else 10
EXTRA = sys.argv[2:]
KEYS = ["r%d" % i for i in range(6)]
OPS = ["create", "increment", "increment", "increment", "sleep", "destroy", "get",
       "connect", "disconnect", "spawn_task", "enqueue", "dequeue", "panic", "slow"]
statuses = collections.Counter()
bodies = collections.defaultdict(set)

host = Host("--shutdown-timeout", "1s", *EXTRA)


def worker(stop):
    h, p = host.app.rsplit(":", 1)
    conn = http.client.HTTPConnection(h, int(p), timeout=30)
    while not stop.is_set():
        k = random.choice(KEYS)
        op = random.choice(OPS)
        if op == "create":
            m, path, body = "POST", "/actors/counter/%s" % q(k), None
        elif op == "sleep":
            m, path, body = "POST", "/actors/counter/%s/sleep" % q(k), None
        elif op == "destroy":
            m, path, body = "DELETE", "/actors/counter/%s" % q(k), None
        else:
            payload = {"increment": {"by": 1}, "spawn_task": {"ms": random.choice([10, 300, 2000])},
                       "slow": {"ms": 50}, "enqueue": {"message": "x"}}.get(op, {})
            m, path, body = "POST", "/actors/counter/%s/actions/%s" % (q(k), op), json.dumps(payload)
        try:
            conn.request(m, path, body=body)
            r = conn.getresponse()
            d = r.read()
        except Exception as e:
            statuses[(op, "EXC " + type(e).__name__)] += 1
            conn = http.client.HTTPConnection(h, int(p), timeout=30)
            continue
        statuses[(op, r.status)] += 1
        if r.status >= 500 or r.status == 409:
            try:
                bodies[(op, r.status)].add(json.loads(d)["error"][:120])
            except Exception:
                bodies[(op, r.status)].add(d[:120])


stop = threading.Event()
ts = [threading.Thread(target=worker, args=(stop,)) for _ in range(12)]
for t in ts:
    t.start()
time.sleep(SECS)
stop.set()
for t in ts:
    t.join()

for (op, st), n in sorted(statuses.items(), key=str):
    print("%-12s %-10s %d" % (op, st, n))
for k, v in bodies.items():
    print(k, sorted(v)[:6])

problems = []
if host.proc.poll() is not None:
    problems.append("host died: rc=%s" % host.proc.returncode)

# Disk vs catalogue (read the catalogue with sqlite3 while the host holds it? it is
# locking_mode=EXCLUSIVE, so read a copy after shutdown instead).
s, live = host.app_req("GET", "/actors")
live = json.loads(live)["actors"]
smp = host.samples()
ta = pick(smp, "actor_type_active", actor_name="counter")
print("live per /actors:", len(live), "actor_type_active:", ta)
if sum(ta.values()) != len(live):
    problems.append("actor_type_active %s != %d live actors" % (ta, len(live)))
active = sum(pick(smp, "actor_active").values())
if active != len(live):
    problems.append("sum(actor_active)=%s != %d live actors" % (active, len(live)))

# Nothing was swept (retention 10m): per-actor counters must add up to the aggregates.
for fam in ["actor_action_calls_total", "actor_action_errors_total", "actor_sqlite_commits_total"]:
    per_actor = sum(pick(smp, fam).values())
    agg = sum(pick(smp, fam.replace("actor_", "actor_type_", 1)).values())
    print("%s: per-actor sum %d, actor_type_ sum %d" % (fam, per_actor, agg))
    if per_actor != agg:
        problems.append("%s: per-actor sum %d != aggregate %d" % (fam, per_actor, agg))
ran = sum(n for (op, st), n in statuses.items() if op not in ("create", "sleep", "destroy") and st in (200, 400, 422, 500))
print("action answers that ran (200/400/422/500):", ran)

# Put everything to sleep; every gauge must be 0.
for k in KEYS:
    host.sleep(k)
time.sleep(0.5)
smp = host.samples("?detail=full")
for (n, l), v in smp.items():
    if n.startswith("actor_") and not n.startswith("actor_metrics") and v != 0 and n.split("{")[0] in (
            "actor_active", "actor_queue_depth", "actor_connections_active", "actor_inbox_depth",
            "actor_user_tasks_active", "actor_type_active", "actor_type_queue_depth",
            "actor_type_connections_active", "actor_type_inbox_depth", "actor_type_user_tasks_active"):
        problems.append("gauge %s%s = %s after every actor slept" % (n, dict(l), v))
retained = pick(smp, "actor_metrics_retained_label_sets", state="live")
if sum(retained.values()) != 0:
    problems.append("retained live label sets %s after every actor slept" % retained)

rc = host.term()
cat = sqlite3.connect(os.path.join(host.data_dir, "catalogue.db"))
rows = {r[0] for r in cat.execute("select id from actors where actor_name='counter'")}
files = {int(f.split(".")[0]) for f in os.listdir(os.path.join(host.data_dir, "counter")) if f.endswith(".db")}
print("catalogue ids", sorted(rows), "db files", sorted(files))
if not files <= rows:
    problems.append("db files with no catalogue row: %s" % sorted(files - rows))
if len(rows) > len(KEYS):
    problems.append("more catalogue rows than keys: %d" % len(rows))
if rc != 0:
    problems.append("exit code %s" % rc)
print("PROBLEMS:" if problems else "OK", *problems[:40], sep="\n")
sys.exit(1 if problems else 0)
