"""Area 4: /actors/top parameter validation and security headers."""
import sys, http.client
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from ah import Host
h = Host()
a, p = h.metrics.rsplit(":", 1)
def get(path):
    c = http.client.HTTPConnection(a, int(p), timeout=10); c.putrequest("GET", path, skip_accept_encoding=True); c.endheaders()
    r = c.getresponse(); d = r.read(); c.close(); return r.status, dict((k.lower(), v) for k, v in r.getheaders()), d
cases = ["/actors/top", "/actors/top?by=calls&by=calls", "/actors/top?n=5&n=5", "/actors/top?type=counter&type=counter",
         "/actors/top?window=5s&window=5s", "/actors/top?by=calls&n=1", "/actors/top?by=%FF", "/actors/top?type=%C3%28",
         "/actors/top?by=" + "z" * 500, "/actors/top?type=" + "y" * 500, "/actors/top?by=%FF" + "z" * 300, "/actors/top?n=-1",
         "/actors/top?n=0", "/actors/top?n=99999999999999999999", "/actors/top?window=1m", "/actors/top?window=5m", "/actors/top?window=2m",
         "/actors/top?by=", "/actors/top?bogus=1", "/actors/top?BY=calls", "/actors/top?by=calls;n=2", "/actors/top?by=c%00alls",
         "/actors/top?by=%E2%82%AC" * 1 + "%E2%82%AC" * 40, "/actors/top?type=%3Cscript%3E", "/actors/top?by", "/actors/top?&&&",
         "/actors/top?n=1&N=2", "/actors/top?by%3Dcalls", "/actors/top?by=calls&by=", "/actors", "/actors?x=%FF", "/actors/", "/actors/top/"]
for path in cases:
    s, hd, d = get(path)
    sec = [hd.get("cache-control"), hd.get("x-content-type-options"), (hd.get("content-security-policy") or "")[:60]]
    print(s, path[:70], "| len", len(d), "|", d[:160].decode(errors="replace").replace("\n", " "), "|", sec)
h.term()
