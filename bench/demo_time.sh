#!/usr/bin/env bash
# Time `make demo` on empty caches (no cached base model, no latency table), first on an idle machine, then with
# one other process holding a core. Usage: bash bench/demo_time.sh   (logs: bench/logs/demo_time_{idle,busy}.log)
set -euo pipefail
cd "$(dirname "$0")/.."
make install >/dev/null
for mode in idle busy; do
  rm -rf runs/demo
  AMC_CACHE="$(mktemp -d)"
  export AMC_CACHE
  busy_pid=""
  if [ "$mode" = busy ]; then
    python3 -c "while True: pass" &
    busy_pid=$!
    sleep 2
  fi
  log="bench/logs/demo_time_$mode.log"
  { echo "# $mode: $(uptime)"; { time make demo; } 2>&1; } >"$log" 2>&1
  [ -n "$busy_pid" ] && kill "$busy_pid"
  rm -rf "$AMC_CACHE"
  echo "$mode: $(grep '^real' "$log")"
done
