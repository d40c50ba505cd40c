# The systemd fileserver VM (run by pifleet-lab-run, as root). First boot: install the fleet file
# and golden tree, run the real agent (`pifleet-fileserver apply`, live on this kernel) twice,
# and report what the kernel, the files and the NFS server show. Later boots (after a power
# cut): report first — what is there came back from the persistent files alone — then run the
# agent as its daemon would at start, which must change nothing but its ownership marks.
# /lab/env gives IFACES ("eth0.10 eth0.11"), EXPORTS ("/export/10.46.189.2 …"), MARKER_FILE.
set -u
. /lab/env
mark() { echo "@@LAB $*"; }
agent() { /opt/pifleet/bin/pifleet-fileserver --fleet /etc/pifleet/fleet.yaml --live host "$@"; }
b64() { base64 -w0 < "$1"; }
# How many actions an `apply --json` reported (node is the only JSON reader in this image).
actions() { /opt/pifleet/bin/node -e 'const o = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`${o.actions.length} drift=${o.drift.length} errors=${o.errors.length} ok=${o.result ? o.result.ok : "none"}`)' "$1"; }

# Everything apply may touch, with inode numbers and mtimes: equal fingerprints = nothing
# changed. Link aliases are left out: they are the agent's ownership mark, which it sets again on
# links that ifupdown brought back at boot.
fingerprint() {
  ip -d addr show | grep -v '^ *alias '
  exportfs -s
  cat /var/lib/nfs/etab
  for f in /etc/exports /etc/exports.d/* /etc/network/interfaces /etc/network/interfaces.d/*; do
    [ -e "$f" ] && stat -c '%n %i %Y %s' "$f" && cat "$f"
  done
  find /export -printf '%p %i %T@ %s %m\n' | sort
}

# apply N: run the agent, report its exit, actions and whether it changed anything.
apply() {
  fingerprint > "/tmp/before$1"
  agent apply --json > "/tmp/apply$1.json" 2> "/tmp/apply$1.err"
  mark "fs-apply$1-exit" $?
  mark "fs-apply$1-actions" "$(actions "/tmp/apply$1.json")"
  [ -s "/tmp/apply$1.err" ] && mark "fs-apply$1-stderr" "$(tail -c 600 "/tmp/apply$1.err" | tr '\n' ' ')"
  fingerprint > "/tmp/after$1"
  if cmp -s "/tmp/before$1" "/tmp/after$1"; then
    mark "fs-apply$1-unchanged" yes
  else
    mark "fs-apply$1-unchanged" "no: $(diff "/tmp/before$1" "/tmp/after$1" | head -c 600 | tr '\n' ' ')"
  fi
}

plan_check() {
  agent plan --check > /tmp/plan.out 2>&1
  local rc=$?
  mark "$1" $rc
  [ $rc = 0 ] || mark "$1-output" "$(head -c 1500 /tmp/plan.out | tr '\n\t' '  ')"
}

report() {
  for ifc in $IFACES; do
    link=$(ip -d -o link show dev "$ifc" 2>&1)
    vlan=$(echo "$link" | grep -o 'vlan protocol 802.1Q id [0-9]*' | awk '{print $NF}')
    parent=$(echo "$link" | sed -n "s/^[0-9]*: $ifc@\([^:]*\):.*/\1/p")
    up=$(echo "$link" | grep -q '[<,]UP[,>]' && echo up || echo down)
    addr=$(ip -o -4 addr show dev "$ifc" 2>/dev/null | awk '{print $4}' | tr '\n' ',' | sed 's/,$//')
    mark fs-iface "$ifc vlan=${vlan:-none} parent=${parent:-none} addr=${addr:-none} $up"
  done
  for f in /etc/exports.d/pifleet.exports /etc/network/interfaces.d/pifleet; do
    if [ -f "$f" ]; then mark fs-file "$f $(b64 "$f")"; else mark fs-file "$f missing"; fi
  done
  exportfs -s | while read -r path client; do mark fs-exportfs "$path $client"; done
  for e in $EXPORTS; do
    if [ -f "$e/$MARKER_FILE" ]; then mark fs-root "$e $(cat "$e/$MARKER_FILE")"; else mark fs-root "$e missing"; fi
    mark fs-root-html "$e $(readlink "$e/var/www/html")"
  done
}

mark fs-state "$(systemctl is-system-running --wait)"
mark fs-boot-time "$(systemd-analyze time | head -1)"
mark fs-kernel "$(uname -r)"
mark fs-nfs-server "$(systemctl is-active nfs-server)"

if [ "$LAB_BOOT" = 1 ]; then
  # The site's own setup, before pifleet: the trunk link is up (on a real fileserver it is the
  # main NIC), the fleet file and golden tree are in place.
  printf '\nauto eth0\niface eth0 inet manual\n' >> /etc/network/interfaces
  ifup eth0
  # …but down when pifleet first runs (a cable replugged, a NIC reset): apply must bring it up,
  # since the kernel refuses to bring a VLAN up on a lower device that is down.
  ip link set eth0 down
  mark fs-trunk-before "$(ip -o link show dev eth0 | grep -q '[<,]UP[,>]' && echo up || echo down)"
  mkdir -p /etc/pifleet /srv/pifleet
  cp /lab/fleet.yaml /etc/pifleet/fleet.yaml
  cp -a /lab/golden /srv/pifleet/golden
  mkdir -p /srv/pifleet/golden/dev /srv/pifleet/golden/proc /srv/pifleet/golden/sys /srv/pifleet/golden/run /srv/pifleet/golden/tmp
  mark fs-vlans-before "$(ip -o link show type vlan | wc -l)"

  apply 1
  # content: shared — one copy of the site into the store every Pi mounts read-only.
  mkdir -p /srv/pifleet/content
  cp -a /lab/site /srv/pifleet/content/site
  agent sync-content /srv/pifleet/content/site > /tmp/sync.out 2>&1
  mark fs-sync-exit $?
  [ -s /tmp/sync.out ] && grep -qi error /tmp/sync.out && mark fs-sync-output "$(tail -c 600 /tmp/sync.out | tr '\n' ' ')"
  report
  apply 2
  mark fs-trunk-after "$(ip -o link show dev eth0 | grep -q '[<,]UP[,>]' && echo up || echo down)"
  # Without Debian's vlan package ifupdown cannot create eth0.N at boot: plan --check says so.
  mv /etc/network/if-pre-up.d/vlan /root/vlan-hook
  agent plan --check > /tmp/plan-novlan.out 2>&1
  mark fs-plan-novlan-exit $?
  mark fs-plan-novlan-says "$(grep -c "install Debian's vlan package" /tmp/plan-novlan.out)"
  mv /root/vlan-hook /etc/network/if-pre-up.d/vlan
else
  # Everything reported here came back at boot from the files alone; then the agent starts, as
  # its daemon would, and must find nothing to change but its ownership marks.
  report
  plan_check fs-plan-at-boot-exit
  apply 3
fi
plan_check fs-plan-check-exit
mark fs-plan-live "$(grep '^live:' /tmp/plan.out)"
mark fs-plan-sandbox-lines "$(grep -c sandbox /tmp/plan.out)"
# A power cut loses what is only in the page cache; the test cuts power next.
sync
mark fileserver-ready "$LAB_BOOT"
