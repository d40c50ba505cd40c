#!/bin/bash
# pifleet-lab-run: started by pifleet-lab.service in a systemd lab VM. Mounts the test's payload
# disk at /lab (and the pifleet disk, if attached, at /opt/pifleet), then runs /lab/run.sh with
# LAB_BOOT = how many times this machine has booted (power-cycles keep the disk, so it counts).
mark() { echo "@@LAB $*"; }
state=/var/lib/pifleet-lab
mkdir -p "$state"
boot=$(( $(cat "$state/boot" 2>/dev/null || echo 0) + 1 ))
echo "$boot" > "$state/boot"
sync
mark boot "$boot"

wait_for() {
  for _ in $(seq 1 600); do [ -b "$1" ] && return 0; sleep 0.1; done
  return 1
}
payload=/dev/disk/by-id/virtio-lab-payload
if ! wait_for "$payload"; then
  mark autorun-error "no payload disk"
  exit 1
fi
mkdir -p /lab
mount -o ro,noload "$payload" /lab || { mark autorun-error "cannot mount payload"; exit 1; }
app=/dev/disk/by-id/virtio-pifleet-app
if [ -b "$app" ]; then
  mkdir -p /opt/pifleet
  mount -o ro,noload "$app" /opt/pifleet || { mark autorun-error "cannot mount the pifleet disk"; exit 1; }
fi
mark autorun-start "$(cut -d' ' -f1 /proc/uptime)"
cd /lab && LAB_BOOT=$boot bash /lab/run.sh
rc=$?
sync
mark run-exit "$rc"
