#!/bin/busybox sh
# /init of the lab initramfs (busybox + iproute2 + a few Debian kernel modules).
#   lab.root=SERIAL   mount the virtio disk with that serial (ext4) and hand over to its /sbin/init
#   otherwise         bring up lo, run the test's /lab/run.sh, report its exit code, then power
#                     off — or, with lab.after=wait, stay on (as a Pi does) until the host
#                     power-cycles or quits the VM
# Results go to the serial console as "@@LAB <key> <value>" lines; the host reads those.
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp

mark() { echo "@@LAB $*"; }
arg() {
  for word in $(cat /proc/cmdline); do
    case "$word" in "$1="*) echo "${word#*=}"; return 0 ;; esac
  done
  return 1
}
die() {
  mark init-error "$*"
  sync
  poweroff -f
}

hostname "$(arg lab.hostname || echo lab)"
modprobe virtio_pci

serial=$(arg lab.root)
if [ -n "$serial" ]; then
  modprobe virtio_blk
  modprobe ext4
  root=
  tries=0
  while [ -z "$root" ]; do
    for s in /sys/block/vd*/serial; do
      [ -f "$s" ] && [ "$(cat "$s")" = "$serial" ] && root=/dev/$(basename "$(dirname "$s")")
    done
    [ -n "$root" ] && break
    tries=$((tries + 1))
    [ $tries -gt 300 ] && die "no disk with serial $serial"
    sleep 0.1
  done
  tries=0
  while [ ! -b "$root" ]; do
    tries=$((tries + 1))
    [ $tries -gt 100 ] && die "root device $root never appeared"
    sleep 0.1
  done
  mount -t ext4 -o rw "$root" /newroot || die "cannot mount $root"
  umount /proc /sys /run /tmp
  mount --move /dev /newroot/dev
  exec switch_root /newroot /sbin/init
fi

modprobe virtio_net
/sbin/ip link set lo up
if [ -f /lab/run.sh ]; then
  mark init-run "$(hostname)"
  sh /lab/run.sh
  mark run-exit $?
else
  mark init-error "no /lab/run.sh"
fi
sync
if [ "$(arg lab.after)" = wait ]; then
  while :; do sleep 3600; done
fi
poweroff -f
