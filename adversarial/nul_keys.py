"""Keys that differ only after a NUL byte (or are prefixes across a NUL)
must stay separate actors, before and after a restart."""
import sys
from ah import Host
keys = ["x\x00a", "x\x00b", "x", "x\x00"]
h = Host()
d = h.data_dir
ids = {}
for i, k in enumerate(keys):
    s, b = h.create(k); ids[k] = b["actor_id"]
    h.call(k, "increment", {"by": 10 ** i})
print("ids:", ids)
vals = {k: h.call(k, "get")[1]["result"]["value"] for k in keys}
print("values:", {repr(k): v for k, v in vals.items()})
h.term()
h = Host(data_dir=d)
after = {k: (h.create(k)[1]["actor_id"], h.call(k, "get")[1]["result"]["value"]) for k in keys}
print("after restart:", {repr(k): v for k, v in after.items()})
h.term()
want = {k: 10 ** i for i, k in enumerate(keys)}
ok = len(set(ids.values())) == len(keys) and vals == want and after == {k: (ids[k], want[k]) for k in keys}
print("OK" if ok else "PROBLEM: keys that differ after a NUL byte are mixed up")
sys.exit(0 if ok else 1)
