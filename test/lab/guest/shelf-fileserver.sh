# The shelf lab's fileserver (run by pifleet-lab-run, as root, at every boot): only what an
# operator does by hand to a new Debian fileserver before pifleet manages it — a management
# address, the disk holding the golden image, Node 20 for pifleet's agent, the admin's SSH key.
# Everything else (the agent's unit, the Pi agent in the golden image, VLANs, exports, roots,
# dnsmasq) is `pifleet install` and the agent's own work, over SSH from the host.
set -u
mark() { echo "@@LAB $*"; }
# eth1: QEMU's user network — SSH forwarded from the host, the coordinator at 10.0.2.2.
ip addr add 10.0.2.15/24 dev eth1 2>/dev/null
ip link set eth1 up
mkdir -p /srv/pifleet/golden
# Writable: the Pi agent is installed into it (pifleet install --image), as on a real fileserver.
mountpoint -q /srv/pifleet/golden || mount /dev/disk/by-id/virtio-pifleet-golden /srv/pifleet/golden || mark autorun-error "cannot mount the golden image"
install -m 0755 /opt/pifleet/bin/node /usr/bin/node
mkdir -p -m 0700 /root/.ssh
install -m 0600 /lab/authorized_keys /root/.ssh/authorized_keys
for _ in $(seq 1 120); do systemctl is-active -q ssh && break; sleep 0.5; done
mark fs-sshd "$(systemctl is-active ssh)"
mark fs-golden "$(du -sm /srv/pifleet/golden | cut -f1) MiB"
mark fileserver-ready
