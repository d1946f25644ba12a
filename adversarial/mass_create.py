"""Create N actors quickly (keep-alive, T threads); returns when done.
Used by the scale scripts.  python3 mass_create.py APP_ADDR N [T] [prefix]"""
import http.client, sys, threading, time, urllib.parse
def run(addr, n, threads=16, prefix="m", path="/actors/counter/%s", method="POST", body=None):
    h, p = addr.rsplit(":", 1)
    it = iter(range(n)); lock = threading.Lock(); bad = []
    def w():
        c = http.client.HTTPConnection(h, int(p), timeout=60)
        while True:
            with lock:
                i = next(it, None)
            if i is None: return
            try:
                c.request(method, path % urllib.parse.quote(prefix + str(i), safe=""), body=body)
                r = c.getresponse(); d = r.read()
                if r.status != 200: bad.append((r.status, d[:100]))
            except Exception as e:
                bad.append(repr(e)); c = http.client.HTTPConnection(h, int(p), timeout=60)
    ts = [threading.Thread(target=w) for _ in range(threads)]
    t = time.time()
    [x.start() for x in ts]; [x.join() for x in ts]
    return time.time() - t, bad
if __name__ == "__main__":
    secs, bad = run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 16, sys.argv[4] if len(sys.argv) > 4 else "m")
    print("%.1fs, %d failures %s" % (secs, len(bad), bad[:3]))
