#!/bin/bash
# pifleet-lab-check: started at boot beside pifleet-pi-agent.service (not ordered after it, so it
# sees the start as it happens). Reports on the serial console, as "@@LAB <key> <value>" lines,
# what systemd itself says about the agent: active only after READY=1 (Type=notify), the
# watchdog timestamp moving (WATCHDOG=1 received), no restart, from which process.
unit=pifleet-pi-agent.service
mark() { echo "@@LAB $*"; }
prop() { systemctl show -P "$1" "$unit"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }

mark check-start "$(uptime_s)"
mark platform "$(uname -m) node $(/usr/bin/node --version) perl $(perl -e 'printf "%vd", $^V')"
# Until active, or the first start failed (a restart is counted, or the unit failed for good),
# or 5 minutes of uptime: a TCG machine is slow, and systemd's own TimeoutStartSec decides first.
state=
while :; do
  state=$(systemctl is-active "$unit")
  [ "$state" = active ] && break
  if [ "$state" = failed ] || [ "$(prop NRestarts)" != 0 ] || [ "$(cut -d. -f1 /proc/uptime)" -gt 300 ]; then break; fi
  sleep 0.2
done
mark agent-state "$state"
if [ "$state" != active ]; then
  mark agent-result "$(prop Result) restarts=$(prop NRestarts) started-usec=$(prop ExecMainStartTimestampMonotonic) exited-usec=$(prop ExecMainExitTimestampMonotonic) status=$(prop ExecMainStatus)"
  journalctl -b -u "$unit" --no-pager -o short-monotonic | tail -40 | sed 's/^/@@LOG /'
  mark check-done failed
  exit 1
fi
# Microseconds since boot: when the start began and when READY=1 made it active.
mark agent-started-usec "$(prop ExecMainStartTimestampMonotonic)"
mark agent-active-usec "$(prop ActiveEnterTimestampMonotonic)"
mark agent-unit "Type=$(prop Type) NotifyAccess=$(prop NotifyAccess) WatchdogUSec=$(prop WatchdogUSec) User=$(prop User)"
mark agent-status "$(prop StatusText)"
pid=$(prop MainPID)
mark agent-main "pid=$pid exe=$(readlink "/proc/$pid/exe") user=$(stat -c %U "/proc/$pid") fd=$(tr '\0' '\n' < "/proc/$pid/environ" | grep -c '^PIFLEET_NOTIFY_FD=')"

# WATCHDOG=1 comes every WatchdogSec/2 (15 s): wait for the timestamp to move twice.
first=$(prop WatchdogTimestampMonotonic)
last=$first
moves=0
for _ in $(seq 1 500); do
  now=$(prop WatchdogTimestampMonotonic)
  if [ "$now" != "$last" ]; then
    moves=$((moves + 1))
    last=$now
    mark watchdog-ping "$now"
    [ "$moves" -ge 2 ] && break
  fi
  sleep 0.2
done
mark watchdog "first=$first last=$last moves=$moves"
mark agent-rss-kib "$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"
mark agent-after "state=$(systemctl is-active "$unit") pid=$(prop MainPID) restarts=$(prop NRestarts)"
# What systemd logs when it drops a notification from a process other than the main one.
mark refused "$(journalctl -b --no-pager -o cat | grep -c 'reception only permitted for main PID')"
journalctl -b -u "$unit" --no-pager -o cat | tail -5 | sed 's/^/@@LOG /'
mark check-done ok
