"""Raw-socket HTTP abuse on both ports: pipelining, bodies on every route,
chunked bodies, CL+TE, oversized bodies and headers, bare LF, HTTP/1.0,
absolute-form URIs, double slashes, encoded paths.

python3 http_raw.py [APP_ADDR METRICS_ADDR]   (none: starts its own host)
"""
import re, socket, sys, time
from ah import Host
own = None
if len(sys.argv) > 2:
    app, met = sys.argv[1], sys.argv[2]
else:
    own = Host()
    app, met = own.app, own.metrics
def raw(addr, data, wait=1.5, shut=False):
    h, p = addr.rsplit(":", 1)
    s = socket.create_connection((h, int(p)), timeout=wait)
    s.sendall(data)
    if shut: s.shutdown(socket.SHUT_WR)
    out = b""
    t = time.time()
    try:
        while time.time() - t < wait:
            c = s.recv(65536)
            if not c: break
            out += c
    except socket.timeout:
        pass
    s.close()
    return out
def statuses(out):
    # every status line, also those of pipelined answers that follow a body directly
    return [m.decode() for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", out)]
cases = [
 ("metrics: 3 pipelined GETs", met, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics?detail=off HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("metrics: GET with body then GET", met, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("metrics: chunked body then GET", met, b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("metrics: POST 404 path with body then GET", met, b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("metrics: CL+TE", met, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("metrics: body over 64 KiB declared", met, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n"),
 ("metrics: body 70000 chunked", met, b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n11170\r\n" + b"a" * 70000 + b"\r\n0\r\n\r\n"),
 ("metrics: bad content-length", met, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
 ("metrics: HTTP/1.0", met, b"GET /healthz HTTP/1.0\r\n\r\n"),
 ("metrics: absolute-form", met, b"GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("metrics: //metrics", met, b"GET //metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("metrics: /metrics/", met, b"GET /metrics/ HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("metrics: /%6detrics", met, b"GET /%6detrics HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("metrics: bare LF", met, b"GET /healthz HTTP/1.1\nHost: x\n\n"),
 ("metrics: 100 KB header", met, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n"),
 ("metrics: 1000 headers", met, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(1000)) + b"\r\n"),
 ("metrics: Expect 100-continue", met, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc"),
 ("metrics: TRACE", met, b"TRACE /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("metrics: CONNECT", met, b"CONNECT x:80 HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("metrics: Accept q=nan", met, b"GET /metrics?detail=off HTTP/1.1\r\nHost: x\r\nAccept: application/vnd.google.protobuf;q=NaN\r\nConnection: close\r\n\r\n"),
 ("app: 3 pipelined POSTs", app, b"POST /actors/counter/p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nPOST /actors/counter/p/actions/increment HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n{\"by\":2}GET /actors HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("app: DELETE with body then GET", app, b"DELETE /actors/counter/nobody HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /actors HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("app: 404 with chunked body then GET", app, b"POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /actors HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("app: 405 with body then GET", app, b"PUT /actors HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /actors HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("app: body 2 MiB declared", app, b"POST /actors/counter/p/actions/get HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n"),
 ("app: chunked 1.5 MiB", app, b"POST /actors/counter/p/actions/get HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"100000\r\n" + b"a" * 0x100000 + b"\r\n80000\r\n" + b"a" * 0x80000 + b"\r\n0\r\n\r\n"),
 ("app: 10 KB key", app, b"POST /actors/counter/" + b"k" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("app: 1024 B key", app, b"POST /actors/counter/" + b"k" * 1024 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("app: 1025 B key", app, b"POST /actors/counter/" + b"k" * 1025 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("app: invalid utf8 key", app, b"POST /actors/counter/%C3%28 HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("app: raw non-ascii path", app, b"POST /actors/counter/\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("app: key with ?", app, b"POST /actors/counter/a%3Fb?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("app: trailing slash", app, b"POST /actors/counter/p/ HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("app: json content-type xml", app, b"POST /actors/counter/p/actions/increment HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: 8\r\n\r\n{\"by\":5}"),
 ("app: HTTP/1.0 keepalive", app, b"GET /actors HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /actors HTTP/1.0\r\n\r\n"),
]
# what each case must answer, in order (one status per request the server
# accepts; a request it cannot frame ends the connection after one answer)
WANT = {
 "metrics: 3 pipelined GETs": ["200", "200", "200"],
 "metrics: GET with body then GET": ["200", "200"],
 "metrics: chunked body then GET": ["200", "200"],
 "metrics: POST 404 path with body then GET": ["404", "200"],
 "metrics: CL+TE": ["200"],
 "metrics: body over 64 KiB declared": ["413"],
 "metrics: body 70000 chunked": ["413"],
 "metrics: bad content-length": ["400"],
 "metrics: HTTP/1.0": ["200"],
 "metrics: absolute-form": ["200"],
 "metrics: //metrics": ["404"],
 "metrics: /metrics/": ["404"],
 "metrics: /%6detrics": ["404"],
 "metrics: bare LF": ["200"],
 "metrics: 100 KB header": ["200"],
 "metrics: 1000 headers": ["431"],
 "metrics: Expect 100-continue": ["100", "200"],
 "metrics: TRACE": ["405"],
 "metrics: CONNECT": ["404"],
 "metrics: Accept q=nan": ["200"],
 "app: 3 pipelined POSTs": ["200", "200", "200"],
 "app: DELETE with body then GET": ["404", "200"],
 "app: 404 with chunked body then GET": ["404", "200"],
 "app: 405 with body then GET": ["405", "200"],
 "app: body 2 MiB declared": ["413"],
 "app: chunked 1.5 MiB": ["413"],
 "app: 10 KB key": ["400"],
 "app: 1024 B key": ["200"],
 "app: 1025 B key": ["400"],
 "app: invalid utf8 key": ["400"],
 "app: raw non-ascii path": ["200"],
 "app: key with ?": ["200"],
 "app: trailing slash": ["404"],
 "app: json content-type xml": ["200"],
 "app: HTTP/1.0 keepalive": ["200", "200"],
}
problems = []
for name, addr, data in cases:
    out = raw(addr, data)
    first = out.split(b"\r\n\r\n", 1)
    body = first[1][:100] if len(first) > 1 else b""
    got = statuses(out)
    print("%-45s -> %s %s" % (name, got, body.replace(b"\n", b" ")[:100]))
    if got != WANT[name]:
        problems.append("%s: %s, want %s" % (name, got, WANT[name]))
if own:
    if own.proc.poll() is not None:
        problems.append("host died: rc=%s" % own.proc.returncode)
    elif own.get_m("/healthz")[0] != 200:
        problems.append("/healthz not 200 at the end")
    own.term()
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
