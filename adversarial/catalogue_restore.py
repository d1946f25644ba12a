"""Data loss at start-up: every {id}.db under ANY sub-directory of the data
dir that the catalogue does not list is deleted, logged at INFO as "database
files of actors destroyed before a crash".

(a) Restoring catalogue.db from a backup, which both catalogue error messages
    advise ("restore it from a backup", "restore the catalogue"), deletes
    every actor created after the backup, with its data.
(b) A copy of a type directory inside the data dir (counter.bak/, made before
    an upgrade) is emptied at the next start.
(c) The lock file removed by hand, a second host starts: its error calls the
    catalogue "not a SQLite database or is corrupt" and advises the restore of (a).

python3 catalogue_restore.py
"""
import os, shutil, subprocess
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
print("    log:", [l[28:] for l in h.log().splitlines() if "removed" in l])
print("    get created-after-backup:", h.call("created-after-backup", "get"))
h.term()
# (b)
shutil.copytree(os.path.join(d, "counter"), os.path.join(d, "counter.bak"))
print("(b) counter.bak before:", sorted(os.listdir(os.path.join(d, "counter.bak"))))
h = Host(data_dir=d)
h.term()
print("    counter.bak after one restart:", sorted(os.listdir(os.path.join(d, "counter.bak"))))
# (c)
h = Host(data_dir=d)
os.remove(os.path.join(d, "catalogue.lock"))
r = subprocess.run([BIN, "--app-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--workload", "none",
                    "--data-dir", d, "--duration", "1s"], capture_output=True, timeout=30)
print("(c) second host, lock file removed: rc=%d %s" % (r.returncode, r.stderr.decode().strip().splitlines()[-1]))
h.term()
shutil.rmtree(d); os.remove(d + ".backup")
