"""Decode the protobuf scrape with a hand-written wire-format parser (no
schema dependency) and compare it with the text scrape, at every level and
for ?actor_key= selections: same families, same label sets, same values;
histogram counts and sums equal; native buckets add up to the sample count;
classic buckets cumulative and ending at the count.

python3 proto_vs_text.py [METRICS_ADDR]   (default: starts its own busy host)
"""
import struct, sys, time, urllib.request, random
from ah import Host, parse

PB = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"


def varint(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7F) << s; s += 7
        if x < 0x80:
            return r, i


def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, t = key >> 3, key & 7
        if t == 0:
            v, i = varint(b, i)
        elif t == 1:
            v = struct.unpack("<d", b[i:i + 8])[0]; i += 8
        elif t == 2:
            n, i = varint(b, i); v = b[i:i + n]; i += n
        elif t == 5:
            v = struct.unpack("<f", b[i:i + 4])[0]; i += 4
        else:
            raise ValueError("wire type %d" % t)
        yield f, t, v


def zz(n):
    return (n >> 1) ^ -(n & 1)


def families(body):
    i = 0
    while i < len(body):
        n, i = varint(body, i)
        yield body[i:i + n]; i += n


def decode(body):
    out = {}   # (name, labels) -> dict
    for fam in families(body):
        name = None; typ = 0; metrics = []
        for f, t, v in fields(fam):
            if f == 1: name = v.decode()
            elif f == 3: typ = v
            elif f == 4: metrics.append(v)
        for m in metrics:
            labels = []; val = {}
            for f, t, v in fields(m):
                if f == 1:
                    d = dict((ff, vv) for ff, tt, vv in fields(v))
                    labels.append((d.get(1, b"").decode(), d.get(2, b"").decode()))
                elif f in (2, 3, 5):
                    val["value"] = dict((ff, vv) for ff, tt, vv in fields(v)).get(1, 0.0)
                elif f == 4:
                    d = {}
                    for ff, tt, vv in fields(v): d[ff] = vv
                    val["count"] = d.get(1, 0); val["sum"] = d.get(2, 0.0)
                elif f == 7:
                    h = {"buckets": [], "pdelta": [], "pspans": [], "count": 0, "sum": 0.0, "zero": 0}
                    for ff, tt, vv in fields(v):
                        if ff == 1: h["count"] = vv
                        elif ff == 2: h["sum"] = vv
                        elif ff == 3:
                            d = dict((a, c) for a, _, c in fields(vv)); h["buckets"].append((d.get(2, 0.0), d.get(1, 0)))
                        elif ff == 5: h["schema"] = zz(vv)
                        elif ff == 7: h["zero"] = vv
                        elif ff == 12:
                            d = dict((a, c) for a, _, c in fields(vv)); h["pspans"].append((zz(d.get(1, 0)), d.get(2, 0)))
                        elif ff == 13:
                            if tt == 2:  # packed
                                j = 0
                                while j < len(vv):
                                    x, j = varint(vv, j); h["pdelta"].append(zz(x))
                            else:
                                h["pdelta"].append(zz(vv))
                        elif ff in (9, 10, 11):
                            h["negative"] = True
                    val.update(h); val["hist"] = True
            out[(name, frozenset(labels))] = (typ, val)
    return out


def compare(addr, q, problems):
    text = parse(urllib.request.urlopen("http://%s/metrics%s" % (addr, q), timeout=60).read().decode())
    req = urllib.request.Request("http://%s/metrics%s" % (addr, q), headers={"Accept": PB})
    pb = decode(urllib.request.urlopen(req, timeout=60).read())
    seen_text = set()
    for (name, labels), (typ, v) in pb.items():
        if name.startswith("actor_metrics_http"):   # moves with every scrape, itself included
            seen_text |= {k for k in text if k[0].startswith(name)}
            continue
        if "hist" in v:
            native = "schema" in v
            # native buckets add up
            if native:
                tot, c = v["zero"], 0
                for d in v["pdelta"]:
                    c += d
                    if c < 0: problems.append("%s %s: negative native bucket" % (q, name))
                    tot += c
                if tot != v["count"]:
                    problems.append("%s %s %s: native buckets sum %d != count %d" % (q, name, dict(labels), tot, v["count"]))
                if sum(n for _, n in v["pspans"]) != len(v["pdelta"]):
                    problems.append("%s %s: spans cover %d buckets, %d deltas" % (q, name, sum(n for _, n in v["pspans"]), len(v["pdelta"])))
            cum = [c for _, c in v["buckets"]]
            if cum != sorted(cum) or (cum and cum[-1] > v["count"]):
                problems.append("%s %s: classic buckets not cumulative %s count %d" % (q, name, cum, v["count"]))
            for suffix, key in (("_count", "count"), ("_sum", "sum")):
                t = text.get((name + suffix, labels))
                if t is None:
                    if not native:
                        problems.append("%s: %s%s %s in protobuf, not in text" % (q, name, suffix, dict(labels)))
                    continue
                seen_text.add((name + suffix, labels))
                if abs(t - v[key]) > 1e-9 * max(1, abs(t)):
                    problems.append("%s: %s%s %s text %s proto %s" % (q, name, suffix, dict(labels), t, v[key]))
            for ub, c in v["buckets"]:
                le = "+Inf" if ub == float("inf") else repr(ub)
                cand = [k for k in text if k[0] == name + "_bucket" and set(labels) <= set(k[1]) and abs(float(dict(k[1])["le"].replace("+Inf", "inf")) - ub) < 1e-12 * max(1, ub if ub != float("inf") else 1)]
                for k in cand:
                    seen_text.add(k)
                    if text[k] != c:
                        problems.append("%s: %s bucket le=%s text %s proto %s" % (q, name, le, text[k], c))
            for k in text:
                if k[0] == name + "_bucket" and set(labels) <= set(k[1]) and len(k[1]) == len(labels) + 1:
                    seen_text.add(k)
        elif "count" in v:  # summary
            for suffix, key in (("_count", "count"), ("_sum", "sum")):
                t = text.get((name + suffix, labels)); seen_text.add((name + suffix, labels))
                if t is None or abs(t - v[key]) > 1e-9 * max(1, abs(t)):
                    problems.append("%s: summary %s%s %s text %s proto %s" % (q, name, suffix, dict(labels), t, v[key]))
        else:
            t = text.get((name, labels)); seen_text.add((name, labels))
            if t is None or t != v["value"]:
                problems.append("%s: %s %s text %s proto %s" % (q, name, dict(labels), t, v["value"]))
    missing = [k for k in text if k not in seen_text
               and not (k[0].endswith("_count") or k[0].endswith("_sum") or k[0].endswith("_bucket"))]
    # per-actor histogram series at core are native-only in protobuf: text has _sum/_count
    if missing:
        problems.append("%s: %d text series missing from protobuf, e.g. %s" % (q, len(missing), missing[:3]))
    return len(pb), len(text)


if __name__ == "__main__":
    own = None
    if len(sys.argv) > 1:
        addr = sys.argv[1]
    else:
        own = Host("--shutdown-timeout", "100ms")
        addr = own.metrics
        for i in range(30):
            k = "demo-%d" % i
            own.create(k)
            for a, p in [("increment", {}), ("fail", {}), ("slow", {"ms": random.randint(1, 30)}), ("connect", {}),
                         ("enqueue", {"message": i}), ("spawn_task", {"kind": "scheduled", "ms": 1}),
                         ("spawn_task", {"kind": "background", "ms": 500})]:
                own.call(k, a, p)
            if i % 3 == 0:
                own.sleep(k)
            if i % 5 == 0:
                own.call(k, "panic")
        time.sleep(0.5)
    problems = []
    for q in ["", "?detail=off", "?detail=core", "?detail=full", "?actor_key=demo-3", "?actor_key=demo-3&detail=core"]:
        for attempt in range(3):   # a busy host moves between the two scrapes; retry for a quiet pair
            p = []
            n = compare(addr, q, p)
            if not p:
                break
        print("%-35s protobuf %5d metrics, text %5d samples: %s" % (q or "(default)", n[0], n[1], "ok" if not p else "%d problems" % len(p)))
        problems += p
    if own:
        own.term()
    print("PROBLEMS:" if problems else "OK", *problems[:20], sep="\n")
    sys.exit(1 if problems else 0)
