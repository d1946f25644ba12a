"""F1. Data loss at start-up (until a6da482): every {id}.db under ANY sub-directory of the data
dir that the catalogue does not list is deleted, logged at INFO as "database
files of actors destroyed before a crash".

(a) Restoring catalogue.db from a backup, which both catalogue error messages
    advise ("restore it from a backup", "restore the catalogue"), deletes
    every actor created after the backup, with its data.
(b) A copy of a type directory inside the data dir (counter.bak/, made before
    an upgrade) is emptied at the next start.
(c) The lock file removed by hand, a second host starts: its error calls the
    catalogue "not a SQLite database or is corrupt" and advises the restore of (a).

Holds now when: (a) the unlisted 3.db is moved under orphaned/, not deleted,
with a WARN line; (b) counter.bak/ is untouched; (c) the second host exits 2
saying the catalogue is in use and not damaged.

python3 catalogue_restore.py
"""
import os, shutil, subprocess, sys
from ah import Host, BIN
problems = []
# (a)
h = Host()
d = h.data_dir
for k in ["a", "b"]:
    h.create(k); h.call(k, "increment", {"by": 7})
h.term()
shutil.copy(os.path.join(d, "catalogue.db"), d + ".backup")
h = Host(data_dir=d)
h.create("created-after-backup"); h.call("created-after-backup", "increment", {"by": 1000})
h.term()
print("(a) files before restore:", sorted(os.listdir(os.path.join(d, "counter"))))
shutil.copy(d + ".backup", os.path.join(d, "catalogue.db"))
h = Host(data_dir=d)
print("    files after restart:  ", sorted(os.listdir(os.path.join(d, "counter"))))
warn = [l[28:] for l in h.log().splitlines() if "orphaned" in l]
print("    log:", warn)
print("    get created-after-backup:", h.call("created-after-backup", "get"))
h.term()
kept = [os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(os.path.join(d, "orphaned")) for f in fs]
print("    under orphaned/:", kept)
if not any(k.endswith(os.path.join("counter", "3.db")) for k in kept):
    problems.append("(a) 3.db of the actor created after the backup is not kept under orphaned/")
if not any("WARN" in l for l in warn):
    problems.append("(a) no WARN line about the orphaned files")
# (b)
shutil.copytree(os.path.join(d, "counter"), os.path.join(d, "counter.bak"))
print("(b) counter.bak before:", sorted(os.listdir(os.path.join(d, "counter.bak"))))
h = Host(data_dir=d)
h.term()
bak_after = sorted(os.listdir(os.path.join(d, "counter.bak")))
print("    counter.bak after one restart:", bak_after)
if bak_after != ["1.db", "2.db"]:
    problems.append("(b) counter.bak/ changed: %s" % bak_after)
# (c)
h = Host(data_dir=d)
os.remove(os.path.join(d, "catalogue.lock"))
r = subprocess.run([BIN, "--app-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--workload", "none",
                    "--data-dir", d, "--duration", "1s"], capture_output=True, timeout=30)
last = r.stderr.decode().strip().splitlines()[-1]
print("(c) second host, lock file removed: rc=%d %s" % (r.returncode, last))
if r.returncode != 2 or "in use by another process" not in last or "not damaged" not in last:
    problems.append("(c) rc %d, message %r" % (r.returncode, last))
h.term()
shutil.rmtree(d); os.remove(d + ".backup")
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
