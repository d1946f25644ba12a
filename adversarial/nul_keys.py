"""Keys that differ only after a NUL byte (or are prefixes across a NUL)
must stay separate actors, before and after a restart."""
from ah import Host
keys = ["x\x00a", "x\x00b", "x", "x\x00"]
h = Host()
d = h.data_dir
ids = {}
for i, k in enumerate(keys):
    s, b = h.create(k); ids[k] = b["actor_id"]
    h.call(k, "increment", {"by": 10 ** i})
print("ids:", ids)
print("values:", {repr(k): h.call(k, "get")[1]["result"]["value"] for k in keys})
h.term()
h = Host(data_dir=d)
print("after restart:", {repr(k): (h.create(k)[1]["actor_id"], h.call(k, "get")[1]["result"]["value"]) for k in keys})
h.term()
