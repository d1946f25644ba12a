"""Clients increment many keys while the host is SIGKILLed (or SIGTERMed) and
restarted on the same --data-dir; every key must read back at least its last
acknowledged value (and at most acked + in-flight), and generations must grow.

python3 durability_kill.py [rounds] [signal: KILL|TERM]
"""
import os
import sys
import threading
import time
import random
import http.client
import json

from ah import Host, q

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
SIG = sys.argv[2] if len(sys.argv) > 2 else "KILL"
KEYS = ["k%d" % i for i in range(40)] + ["weird/\"key\n%d" % i for i in range(5)]
data_dir = None
acked = {k: 0 for k in KEYS}        # value acknowledged by a 200
inflight = {k: 0 for k in KEYS}     # increments sent without an answer
gens = {k: 0 for k in KEYS}
seen = {k: set() for k in KEYS}
lock = threading.Lock()
problems = []


def worker(host, keys, stop):
    h, p = host.app.rsplit(":", 1)
    conn = None
    while not stop.is_set():
        k = random.choice(keys)
        with lock:
            inflight[k] += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection(h, int(p), timeout=10)
            conn.request("POST", "/actors/counter/%s/actions/increment" % q(k), body='{"by":1}')
            r = conn.getresponse()
            d = r.read()
            if r.status == 200:
                v = json.loads(d)["result"]["value"]
                with lock:
                    inflight[k] -= 1
                    if v in seen[k]:
                        problems.append("key %r: value %d acknowledged twice (a lost update)" % (k, v))
                    seen[k].add(v)
                    acked[k] = max(acked[k], v)
            else:
                with lock:
                    inflight[k] -= 1  # refused: not applied (503 shutting down etc.)
                if r.status not in (503,):
                    problems.append("status %d %s" % (r.status, d[:200]))
        except Exception:
            conn = None  # connection died: increment may or may not have applied
            time.sleep(0.01)


for rnd in range(ROUNDS):
    host = Host(data_dir=data_dir)
    data_dir = host.data_dir
    # verify every key against what was acked before the kill
    for k in KEYS:
        s, body = host.call(k, "get")
        if s == 404 or (s != 200 and acked[k] == 0):
            if acked[k]:
                problems.append("round %d: key %r lost: %s" % (rnd, k, body))
            continue
        if s != 200:
            # never created? create it
            problems.append("round %d: get %r -> %d %s" % (rnd, k, s, body))
            continue
        v = body["result"]["value"]
        if not (acked[k] <= v <= acked[k] + inflight[k]):
            problems.append("round %d: key %r read %d, acked %d, inflight %d" % (rnd, k, v, acked[k], inflight[k]))
        acked[k] = v
        inflight[k] = 0
    for k in KEYS:
        s, info = host.create(k)
        if s != 200:
            problems.append("create %r: %s %s" % (k, s, info))
            continue
        g = info["generation"]
        if g <= gens[k]:
            problems.append("round %d: key %r generation %d after %d" % (rnd, k, g, gens[k]))
        gens[k] = g
    stop = threading.Event()
    ts = [threading.Thread(target=worker, args=(host, KEYS, stop)) for _ in range(8)]
    for t in ts:
        t.start()
    time.sleep(3)
    if SIG == "KILL":
        host.kill()
    else:
        rc = host.term()
        if rc != 0:
            problems.append("round %d: exit code %s after SIGTERM" % (rnd, rc))
    stop.set()
    for t in ts:
        t.join()
    print("round", rnd, "acked total", sum(acked.values()), "in doubt", sum(inflight.values()))

host = Host(data_dir=data_dir)
for k in KEYS:
    s, body = host.call(k, "get")
    v = body["result"]["value"] if s == 200 else None
    if v is None or not (acked[k] <= v <= acked[k] + inflight[k]):
        problems.append("final: key %r read %s, acked %d, inflight %d" % (k, v, acked[k], inflight[k]))
host.term()
print("PROBLEMS:" if problems else "OK", *problems[:30], sep="\n")
sys.exit(1 if problems else 0)
