"""SQLite calls run on the tokio worker threads. If something else holds a
lock on a sleeping actor's database (a backup tool, an operator's sqlite3
shell), waking that actor blocks a worker for the whole busy timeout (5 s).
Two such wakes on a 2-core machine stall every other actor, and the app API.

(F6, until a6da482.) Holds now when: the healthy call and GET /actors answer
in under 1 s while the two wakes wait, and the two locked wakes fail cleanly
(500) after the busy timeout instead of hanging.

python3 external_lock_stall.py
"""
import os, sqlite3, sys, threading, time
from ah import Host
h = Host()
ids = {}
for k in ["locked1", "locked2", "healthy"]:
    s, b = h.create(k); ids[k] = b["actor_id"]; h.call(k, "increment")
for k in ["locked1", "locked2"]:
    h.sleep(k)
holders = []
for k in ["locked1", "locked2"]:
    c = sqlite3.connect(os.path.join(h.data_dir, "counter", ids[k] + ".db"), isolation_level=None)
    c.execute("BEGIN EXCLUSIVE")  # what `sqlite3 file.db` + a write, or a backup with a write lock, holds
    holders.append(c)
res = {}
def call(k):
    t = time.time(); s, b = h.call(k, "get"); res[k] = (s, str(b)[:90], round(time.time() - t, 2))
ts = [threading.Thread(target=call, args=(k,)) for k in ["locked1", "locked2"]]
[t.start() for t in ts]
time.sleep(0.3)
problems = []
t = time.time(); s, b = h.call("healthy", "get"); dt = time.time() - t
print("healthy actor call while 2 wakes wait on a lock: %s in %.2fs" % (s, dt))
if s != 200 or dt > 1: problems.append("healthy call %s in %.2fs" % (s, dt))
t = time.time(); s, b = h.app_req("GET", "/actors"); dt = time.time() - t
print("GET /actors meanwhile: %s in %.2fs" % (s, dt))
if s != 200 or dt > 1: problems.append("GET /actors %s in %.2fs" % (s, dt))
[t.join() for t in ts]
print(res)
for k, (s, b, dt) in res.items():
    if s != 500 or dt > 15: problems.append("locked wake %s: %s after %.1fs" % (k, s, dt))
for c in holders: c.execute("ROLLBACK"); c.close()
h.term()
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
