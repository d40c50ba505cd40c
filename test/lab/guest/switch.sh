# A "switch" VM (lab initramfs): a VLAN-filtering bridge over every NIC. /lab/env gives PORTS
# ("eth0:24 eth1:1": NIC and the switch port it stands for); /lab/vlans holds one
# `<dev> <vid> [pvid] [untagged]` line per port membership, from the plan's switch table.
. /lab/env
mark() { echo "@@LAB $*"; }
IP=/sbin/ip
BRIDGE=/sbin/bridge
modprobe bridge
# No default VLAN 1 on any port: a port carries exactly the plan's VLANs.
$IP link add br0 type bridge vlan_filtering 1 vlan_default_pvid 0 stp_state 0
for p in $PORTS; do
  dev=${p%%:*}
  $IP link set "$dev" master br0 || mark switch-error "enslave $dev"
  $IP link set "$dev" up
done
while read -r dev vid flags; do
  [ -n "$dev" ] || continue
  # shellcheck disable=SC2086 # flags are words
  $BRIDGE vlan add dev "$dev" vid "$vid" $flags || mark switch-error "vlan $dev $vid $flags"
done < /lab/vlans
$IP link set br0 up
for p in $PORTS; do
  dev=${p%%:*}
  mark switch-port "${p#*:} $dev $($BRIDGE vlan show dev "$dev" | tail -n +2 | sed "s/^$dev//" | awk 'NF' | tr -s ' \t' ' ' | tr '\n' ';')"
done
mark switch-ready
