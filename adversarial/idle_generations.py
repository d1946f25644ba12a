"""Every wake after an idle sleep is a new generation, so a new label set
retained for --retention. With a short --idle-timeout (0s is accepted), one
actor called steadily makes a new series set per call: cardinality follows
calls, not actors. (F8, until a6da482.)

Holds now when: `--idle-timeout 0s` (and 50ms) is refused at start with exit 2,
and at the 100ms minimum each wake makes exactly one label set (as many sets
as generations: by design).

python3 idle_generations.py [idle_timeout] [calls] [gap_s]
"""
import subprocess, sys, time, tempfile
from ah import Host, pick, BIN
problems = []
for bad in ["0s", "50ms"]:
    r = subprocess.run([BIN, "--app-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--workload", "none",
                        "--data-dir", tempfile.mkdtemp(prefix="adv-"), "--idle-timeout", bad],
                       capture_output=True, timeout=10)
    last = ([l for l in r.stderr.decode().splitlines() if "error" in l] or [""])[0]
    print("--idle-timeout %s: exit %d %s" % (bad, r.returncode, last[:160]))
    if r.returncode != 2: problems.append("--idle-timeout %s: exit %d" % (bad, r.returncode))
IT = sys.argv[1] if len(sys.argv) > 1 else "100ms"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 50
GAP = float(sys.argv[3]) if len(sys.argv) > 3 else 0.15
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
if len(sets) != b.get("generation"):
    problems.append("%d label sets for %s generations" % (len(sets), b.get("generation")))
h.term()
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
