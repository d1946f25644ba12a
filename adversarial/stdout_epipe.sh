#!/bin/sh
# actor-host prints `listening ...` and, at exit, `summary ...` on stdout. If
# whoever read the first line has gone (a wrapper that reads the listening
# line then closes the pipe, `| head -1`, a dead log shipper), the final
# println! panics with EPIPE after a clean SIGTERM shutdown: exit code 101 and a
# panic backtrace instead of 0. (then core/src/bin/actor-host.rs:283; the binary is now in host/)
# F7, until a6da482. Holds now when: exit 0 and no panic line; exits 1 otherwise.
B=${ACTOR_HOST:-$(dirname "$0")/../target/release/actor-host}
D=$(mktemp -d)
F=$(mktemp -u); mkfifo "$F"
"$B" --app-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --workload none --data-dir "$D" > "$F" 2> "$D.err" &
P=$!
head -1 "$F"            # read the listening line, then close the pipe
sleep 1
kill -TERM $P
wait $P
RC=$?
echo "exit code after SIGTERM: $RC"
PANIC=$(grep -m2 -E "panicked|failed printing" "$D.err")
[ -n "$PANIC" ] && echo "$PANIC"
rm -rf "$D" "$D.err" "$F"
if [ "$RC" -eq 0 ] && [ -z "$PANIC" ]; then echo OK; else echo PROBLEM; exit 1; fi
