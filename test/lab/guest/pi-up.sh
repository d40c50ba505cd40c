#!/bin/sh
# pifleet-lab-pi-up (a oneshot after multi-user.target in the lab's golden image): tells the host,
# on the serial console, that this Pi is up and what it booted from. Nothing here configures the
# Pi: its identity and eth0.131 come from the root the fileserver agent built.
mark() { echo "@@LAB $*"; }
mark pi-up "$(hostname) $(cut -d' ' -f1 /proc/uptime)"
mark pi-root "$(awk '$2 == "/" { r = $3 " " $1 } END { print r }' /proc/mounts)"
mark pi-eth0 "$(ip -o -4 addr show dev eth0 | awk '{ print $4 }')"
# The public address may still be in duplicate address detection: give it a few seconds.
for _ in $(seq 1 20); do
  a=$(ip -o -6 addr show dev eth0.131 scope global -tentative 2>/dev/null | awk '{ print $4 }')
  [ -n "$a" ] && break
  sleep 0.5
done
mark pi-public "${a:-none}"
mark pi-state "$(systemctl is-system-running)"
# A unit that failed: its name and its last journal lines, so a failing boot explains itself.
for u in $(systemctl --failed --plain --no-legend | awk '{ print $1 }'); do
  mark pi-failed "$u"
  journalctl -u "$u" -n 12 --no-pager -o cat 2>&1 | while IFS= read -r line; do mark pi-journal "$u: $line"; done
done
