"""SQLite calls run on the tokio worker threads. If something else holds a
lock on a sleeping actor's database (a backup tool, an operator's sqlite3
shell), waking that actor blocks a worker for the whole busy timeout (5 s).
Two such wakes on a 2-core machine stall every other actor, and the app API.

python3 external_lock_stall.py
"""
import os, sqlite3, threading, time
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
t = time.time(); s, b = h.call("healthy", "get"); print("healthy actor call while 2 wakes wait on a lock: %s in %.2fs" % (s, time.time() - t))
t = time.time(); s, b = h.app_req("GET", "/actors"); print("GET /actors meanwhile: %s in %.2fs" % (s, time.time() - t))
[t.join() for t in ts]
print(res)
for c in holders: c.execute("ROLLBACK"); c.close()
h.term()
