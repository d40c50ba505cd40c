# A tiny "Pi" VM (lab initramfs) on a switch port, untagged like a real Pi: the switch puts its
# frames in the Pi's private VLAN. It configures eth0 as the plan's cmdline would (ip=…), mounts
# its own root from the fileserver over NFS, reads the golden tree's marker, tries another Pi's
# export, then tries to pass for that other Pi (its address, untagged and tagged with its VLAN).
# /lab/env: PI_ADDR PREFIX FS_ADDR OWN_EXPORT OTHER_EXPORT MARKER_FILE OTHER_PI_ADDR OTHER_FS_ADDR OTHER_VLAN CONTENT_EXPORT
. /lab/env
mark() { echo "@@LAB $*"; }
IP=/sbin/ip
mark pi-boot "$(cut -d' ' -f1 /proc/uptime)"
for m in 8021q nfsv3; do modprobe "$m" || mark pi-error "modprobe $m"; done

$IP link set eth0 up
$IP addr add "$PI_ADDR/$PREFIX" dev eth0
mark pi-link "$($IP -o -4 addr show dev eth0 | awk '{print $2 " " $4}')"

reached=no
for _ in $(seq 1 60); do
  if ping -c 1 -W 1 "$FS_ADDR" >/dev/null 2>&1; then reached=yes; break; fi
done
mark pi-ping "$reached"

mkdir -p /mnt/own /mnt/other
# Text options go to the kernel's own NFS client, which speaks MOUNT and NFSv3 itself.
opts="vers=3,proto=tcp,mountproto=tcp,nolock,addr=$FS_ADDR,mountaddr=$FS_ADDR"
if err=$(mount -t nfs -o "$opts" "$FS_ADDR:$OWN_EXPORT" /mnt/own 2>&1); then
  mark pi-mount-own ok
  mark pi-mount-fstype "$(awk '$2 == "/mnt/own" { print $3 " " $1 }' /proc/mounts)"
  if [ -f "/mnt/own/$MARKER_FILE" ]; then mark pi-golden "$(cat "/mnt/own/$MARKER_FILE")"; else mark pi-golden missing; fi
  if echo written-by-pi > /mnt/own/pi-wrote 2>/dev/null; then mark pi-write ok; else mark pi-write fail; fi
  umount /mnt/own
else
  mark pi-mount-own "fail $err"
fi

# content: shared — the site, one copy for every Pi, read-only.
mkdir -p /mnt/site
if err=$(mount -t nfs -o "ro,$opts" "$FS_ADDR:$CONTENT_EXPORT" /mnt/site 2>&1); then
  mark pi-site-mount ok
  if [ -f /mnt/site/current/index.html ]; then mark pi-site "$(cat /mnt/site/current/index.html)"; else mark pi-site missing; fi
  # Asked to remount read-write, the write must still fail: the export is ro and root-squashed.
  mount -o remount,rw /mnt/site 2>/dev/null
  if err=$(sh -c 'echo x > /mnt/site/current/pi-wrote' 2>&1); then mark pi-site-write "written"; else mark pi-site-write "refused $err"; fi
  umount /mnt/site
else
  mark pi-site-mount "fail $err"
fi

if err=$(mount -t nfs -o "$opts" "$FS_ADDR:$OTHER_EXPORT" /mnt/other 2>&1); then
  mark pi-mount-other "mounted"
  umount /mnt/other
else
  mark pi-mount-other "failed $err"
fi

# Passing for the other Pi: the fileserver's address on that Pi's VLAN must stay unreachable.
answer() { if ping -c 2 -W 2 "$OTHER_FS_ADDR" >/dev/null 2>&1; then echo answered; else echo silent; fi; }
$IP addr add "$OTHER_PI_ADDR/$PREFIX" dev eth0
mark pi-spoof-untagged "$(answer)"
$IP addr del "$OTHER_PI_ADDR/$PREFIX" dev eth0
$IP link add link eth0 name "eth0.$OTHER_VLAN" type vlan id "$OTHER_VLAN"
$IP addr add "$OTHER_PI_ADDR/$PREFIX" dev "eth0.$OTHER_VLAN"
$IP link set "eth0.$OTHER_VLAN" up
mark pi-spoof-tagged "$(answer)"
$IP link del "eth0.$OTHER_VLAN"
mark pi-done
