#!/bin/bash
# A full disk during the demo, by hand: the demo's data dir on a 64 MiB tmpfs, filled to the last block
# for 20 s while an instance fetches its config every 0.5 s, then freed. Prints whether the process stayed
# up, how many fetches were served, what a PUT got, and how long after freeing the mirror moved on.
#
#   sudo bench/disk-full-demo.sh [REPO]      (REPO: a checkout to run, default this one; needs root to mount)
#
# Environment: MIN_FREE_MIB (default 8) is passed as --min-free-mib; leave it empty ("") for a checkout
# that predates the flag.
set -u
REPO=$(cd "${1:-$(dirname "$0")/..}" && pwd)
MNT=$(mktemp -d /tmp/cldist-disk-full-XXXXXX)
LOG=$MNT.log
mount -t tmpfs -o size=64m tmpfs "$MNT" || { echo "cannot mount a tmpfs here (needs root)"; exit 2; }
trap 'umount -l "$MNT"; rmdir "$MNT"' EXIT
EXTRA=(); [ -n "${MIN_FREE_MIB-8}" ] && EXTRA=(--min-free-mib "${MIN_FREE_MIB-8}")
free_mib() { df -m --output=avail "$MNT" | tail -1 | tr -d ' '; }
moved() { grep -c '"mirror.current_moved"' "$LOG"; }

cd "$REPO" || exit 2
node bin/cldist.js serve --demo --data-dir "$MNT/demo" --port 0 --publish-seconds 2 --log-format json \
  "${EXTRA[@]}" >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 120); do [ "$(moved)" -gt 0 ] && break; sleep 0.5; done
URL=$(grep -o '"url":"[^"]*"' "$LOG" | head -1 | cut -d'"' -f4)
TOKEN=$(cat "$MNT/demo/admin-token")
put() {
  curl -s -m 10 -o "$MNT.put" -w '%{http_code}' -X PUT -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{"ignition":{"ignition":{"version":"3.4.0"}}}' "$URL/v1/instances/$1"
}
put demo-1 >/dev/null
IGN=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["ignitionUrl"])' "$MNT.put")
echo "before: fetch $(curl -s -o /dev/null -w '%{http_code}' "$IGN"), $(free_mib) MiB free"

dd if=/dev/zero of="$MNT/ballast" bs=1M 2>/dev/null
echo "filled: $(free_mib) MiB free"
ok=0; other=0
for _ in $(seq 1 40); do
  [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$IGN")" = 200 ] && ok=$((ok + 1)) || other=$((other + 1))
  sleep 0.5
done
alive() { kill -0 "$PID" 2>/dev/null && echo yes || echo no; }
echo "while full: 40 fetches in 20 s: $ok answered 200, $other not; PUT answered $(put demo-2); process alive: $(alive)"

before=$(moved)
rm -f "$MNT/ballast"
freed=$(date +%s.%N)
for _ in $(seq 1 120); do [ "$(moved)" -gt "$before" ] && break; [ "$(alive)" = no ] && break; sleep 0.5; done
after=$(python3 -c "import time;print(round(time.time()-$freed,1))")
[ "$(moved)" -gt "$before" ] && resumed="after $after s ($(($(moved) - before)) moves)" || resumed="never"
echo "freed: $(free_mib) MiB free; current moved again: $resumed;" \
  "fetch $(curl -s -m 5 -o /dev/null -w '%{http_code}' "$IGN"); process alive: $(alive)"
echo "events: $(grep -o '"event":"\(mirror.paused_low_disk\|mirror.resumed\|ledger.thread_[a-z]*\)"' "$LOG" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
grep -m1 -E 'LEVEL_IO_ERROR' "$LOG" | cut -c1-160
kill -TERM "$PID" 2>/dev/null; wait "$PID"; code=$?
echo "exit after SIGTERM: $code; serve.pid left behind: $([ -e "$MNT/demo/serve.pid" ] && echo yes || echo no)"
rm -f "$LOG" "$MNT.put"
