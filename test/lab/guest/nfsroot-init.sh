#!/bin/busybox sh
# /sbin/init of the lab's golden tree: what a diskless Pi runs once Debian's initramfs has
# mounted its root over NFS (from the plan's cmdline). It reports how it got here, then powers off.
B=/bin/busybox
exec > /dev/ttyS0 2>&1
mark() { echo "@@LAB $*"; }
mark nfsroot-init "pid $$"
mark nfsroot-root "$($B awk '$2 == "/" { r = $3 " " $1 } END { print r }' /proc/mounts)"
mark nfsroot-addr "$($B ip -o -4 addr show dev eth0 | $B awk '{ print $2 " " $4 }')"
mark nfsroot-golden "$($B cat /etc/pifleet-golden)"
mark nfsroot-cmdline "$($B cat /proc/cmdline)"
mark nfsroot-done
$B sync
$B poweroff -f
