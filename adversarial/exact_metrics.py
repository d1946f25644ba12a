"""A known sequence of calls; per-actor and actor_type_* values must be exact,
gauges must return to 0 after sleep / destroy / panic, and a destroyed actor's
series must vanish after --retention.

python3 exact_metrics.py
"""
import sys
import time

from ah import Host, pick, one

problems = []


def check(name, got, want):
    if got != want:
        problems.append("%s: got %s, want %s" % (name, got, want))


h = Host("--retention", "3s", "--sweep-interval", "1s", "--shutdown-timeout", "500ms")
s0 = h.samples()
base_calls = {dict(l)["action"]: v for l, v in pick(s0, "actor_type_action_calls_total").items()}

# ---- actor a: a known sequence
st, a = h.create("a")
gen_a = "%s:%s" % (a["actor_id"], a["generation"])
for _ in range(3):
    h.call("a", "increment", {"by": 2})
for _ in range(2):
    h.call("a", "fail")
h.call("a", "get")
h.call("a", "connect")
h.call("a", "connect")
h.call("a", "disconnect")
h.call("a", "disconnect")
h.call("a", "disconnect")  # fails: no connection open (an error)
h.call("a", "connect")
for m in range(3):
    h.call("a", "enqueue", {"message": m})
h.call("a", "dequeue")
h.call("a", "spawn_task", {"kind": "background", "ms": 3000})
h.call("a", "spawn_task", {"kind": "keep_awake", "ms": 10})
h.call("a", "increment", {"by": "x"})  # bad payload: error
time.sleep(0.2)
calls = 3 + 2 + 1 + 5 + 1 + 3 + 1 + 2 + 1
errors = 2 + 1 + 1

s = h.samples("?detail=full")
L = dict(actor_id_gen=gen_a, actor_key="a")
check("a calls", one(s, "actor_action_calls_total", **L), calls)
check("a errors", one(s, "actor_action_errors_total", **L), errors)
check("a duration count", one(s, "actor_action_duration_seconds_count", **L), calls)
check("a active", one(s, "actor_active", **L), 1)
check("a connections_active", one(s, "actor_connections_active", **L), 1)
check("a connections_total", one(s, "actor_connections_total", **L), 3)
check("a queue_depth", one(s, "actor_queue_depth", **L), 2)
check("a inbox queue", one(s, "actor_inbox_depth", inbox="queue", **L), 2)
check("a sent", one(s, "actor_queue_messages_sent_total", **L), 3)
check("a received", one(s, "actor_queue_messages_received_total", **L), 1)
check("a tasks bg", one(s, "actor_user_tasks_active", kind="background", **L), 1)
check("a mut action", one(s, "actor_state_mutations_total", reason="action", **L), 3)
check("a mut connection", one(s, "actor_state_mutations_total", reason="connection", **L), 5)
check("a commits", one(s, "actor_sqlite_commits_total", **L), 2 + 3)  # CREATE TABLE + INSERT at load_state, 3 increments
check("type active", one(s, "actor_type_active", actor_name="counter"), 1)
check("type connections", one(s, "actor_type_connections_active", actor_name="counter"), 1)
check("type queue", one(s, "actor_type_queue_depth", actor_name="counter"), 2)
check("type tasks bg", one(s, "actor_type_user_tasks_active", actor_name="counter", kind="background"), 1)
tcalls = {dict(l)["action"]: v - base_calls.get(dict(l)["action"], 0)
          for l, v in pick(s, "actor_type_action_calls_total").items()}
check("type calls increment", tcalls.get("increment"), 4)
check("type calls disconnect", tcalls.get("disconnect"), 3)
check("type errors", sum(pick(s, "actor_type_action_errors_total").values()), errors)

# ---- sleep: gauges to 0 at once; shutdown waited for the 3 s task (timeout 500ms)
h.sleep("a")
s = h.samples("?detail=full")
for fam in ["actor_active", "actor_connections_active", "actor_queue_depth"]:
    check("after sleep " + fam, one(s, fam, **L), 0)
check("after sleep inbox queue", one(s, "actor_inbox_depth", inbox="queue", **L), 0)
check("after sleep tasks bg", one(s, "actor_user_tasks_active", kind="background", **L), 0)
check("after sleep timeouts", one(s, "actor_shutdown_timeouts_total", reason="sleep", **L), 1)
for fam in ["actor_type_active", "actor_type_connections_active", "actor_type_queue_depth"]:
    check("after sleep " + fam, one(s, fam, actor_name="counter"), 0)
check("after sleep counters keep", one(s, "actor_action_calls_total", **L), calls)

# ---- wake: a new generation, new series from 0, old ones expire after 3 s
st, a2 = h.call("a", "get")
st, info = h.create("a")
gen_a2 = "%s:%s" % (info["actor_id"], info["generation"])
check("wake new generation", info["generation"], a["generation"] + 1)
L2 = dict(actor_id_gen=gen_a2, actor_key="a")
s = h.samples()
check("gen2 calls", one(s, "actor_action_calls_total", **L2), 1)
check("type calls still counts gen1", sum(pick(s, "actor_type_action_calls_total").values()) - sum(base_calls.values()), calls + 1)

# ---- panic: gauges 0, series kept, aggregate exact
h.call("a", "connect")
st, b = h.call("a", "panic")
check("panic status", st, 500)
s = h.samples()
check("after panic active", one(s, "actor_active", **L2), 0)
check("after panic conns", one(s, "actor_connections_active", **L2), 0)
check("after panic type conns", one(s, "actor_type_connections_active", actor_name="counter"), 0)

# ---- destroy b, then wait for retention + sweep: every a/b series gone, aggregates stay
h.create("b")
h.call("b", "increment")
st, binfo = h.create("b")
h.destroy("b")
total_before = sum(pick(h.samples(), "actor_type_action_calls_total").values())
time.sleep(5.5)
s = h.samples("?detail=full")
left = {(n, l) for (n, l) in s if ("actor_key", "a") in l or ("actor_key", "b") in l}
check("series left after retention", sorted(left)[:5], [])
total_after = sum(pick(s, "actor_type_action_calls_total").values())
check("aggregate kept after sweep", total_after, total_before)
check("retained label sets", sum(pick(s, "actor_metrics_retained_label_sets").values()), 0)
check("series removed", one(s, "actor_metrics_series_removed_total"), 3)

h.term()
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
