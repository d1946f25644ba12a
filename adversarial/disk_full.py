"""Data dir on a 2 MB tmpfs (needs root: mount -t tmpfs -o size=2m tmpfs DIR).
Create actors and write until the disk is full; every error must be a clean
JSON 5xx, the host must stay up, /healthz truthful, and after space is freed
the host must work again, with every acknowledged value readable.

Holds when: every refused call is a JSON 5xx, the host stays up with /healthz
200, after the space comes back every acknowledged value reads back (also
after a restart), a create that failed left nothing behind (generation 1),
and SIGTERM exits 0.

python3 disk_full.py [/tmp/adv/tmpfs]   (no DIR: mounts its own 2 MB tmpfs, as root)
"""
import atexit, collections, os, subprocess, sys, json, shutil, tempfile, time
from ah import Host
problems = []
if len(sys.argv) > 1:
    d = sys.argv[1]
else:
    d = tempfile.mkdtemp(prefix="adv-tmpfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", d], check=True)
    @atexit.register
    def _umount():
        import ah; ah._reap()   # the hosts first, then the mount
        subprocess.run(["umount", "-l", d]); os.rmdir(d)
for f in os.listdir(d):
    p = os.path.join(d, f)
    shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
h = Host(data_dir=os.path.join(d, "data"))
acked = {}
st = collections.Counter()
errs = collections.Counter()
filler = os.path.join(d, "filler")
for i in range(400):
    k = "k%d" % i
    s, b = h.create(k)
    st[("create", s)] += 1
    if s != 200:
        errs[str(b)[:150]] += 1
        if s < 500 or not isinstance(b, dict) or "error" not in b: problems.append("create %s: %s %r" % (k, s, b))
        continue
    for _ in range(5):
        s, b = h.call(k, "increment", {"by": 1})
        st[("increment", s)] += 1
        if s == 200:
            acked[k] = b["result"]["value"]
        else:
            errs[str(b)[:150]] += 1
            if s < 500 or not isinstance(b, dict) or "error" not in b: problems.append("increment %s: %s %r" % (k, s, b))
print(st)
for e, n in errs.most_common(8):
    print(n, e)
print("df:", shutil.disk_usage(d))
hz = h.get_m("/healthz")
print("healthz:", hz, "readyz:", h.get_m("/readyz"))
print("alive:", h.proc.poll() is None)
if hz[0] != 200 or h.proc.poll() is not None: problems.append("healthz %s, alive %s" % (hz, h.proc.poll() is None))
if not errs: problems.append("the disk never filled up (no refused call)")
# free space by removing nothing we own... instead, grow the tmpfs
os.system("mount -o remount,size=64m %s" % d)
bad = []
for k, v in acked.items():
    s, b = h.call(k, "get")
    if s != 200 or b["result"]["value"] != v:
        bad.append((k, v, s, b))
print("after freeing space: %d acked keys, %d wrong: %s" % (len(acked), len(bad), bad[:5]))
if bad: problems.append("%d acked values wrong after freeing space" % len(bad))
s, b = h.create("after"); print("create after:", s, b)
if s != 200: problems.append("create after freeing space: %s %s" % (s, b))
# a create that answered 500 must not have happened: re-creating it must give generation 1
failed = [("k%d" % i) for i in range(400) if ("k%d" % i) not in acked]
gens = {}
for k in failed[:60]:
    s, b = h.create(k)
    gens[b.get("generation")] = gens.get(b.get("generation"), 0) + 1
print("re-create of keys whose create failed: generations", gens)
if set(gens) - {1}: problems.append("re-create of failed creates: generations %s" % gens)
rc = h.term()
if rc != 0: problems.append("exit %s after SIGTERM" % rc)
print("exit", rc, h.log()[-1500:])
h2 = Host(data_dir=os.path.join(d, "data"))
bad = []
for k, v in acked.items():
    s, b = h2.call(k, "get")
    if s != 200 or b["result"]["value"] != v:
        bad.append((k, v, s, b))
print("after restart: %d wrong: %s" % (len(bad), bad[:5]))
if bad: problems.append("%d acked values wrong after a restart" % len(bad))
h2.term()
os.system("mount -o remount,size=2m %s" % d)
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
