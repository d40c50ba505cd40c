import dgram from "node:dgram";

async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => resolve());
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** What a VM NIC plugs into: gives QEMU's `-netdev` options for the NIC with that id. */
export interface Cable {
  readonly name: string;
  attach(id: string): string;
}

/**
 * A virtual cable between two VM NICs: each end is a UDP socket on 127.0.0.1 sending every
 * Ethernet frame, VLAN tags included, to the other. Nothing leaves loopback. UDP, unlike QEMU's
 * listen/connect sockets, lets either end start, stop or be power-cycled in any order.
 */
export class Wire implements Cable {
  private attached = 0;

  private constructor(
    readonly name: string,
    private readonly ports: [number, number],
  ) {}

  static async create(name: string): Promise<Wire> {
    return new Wire(name, [await freeUdpPort(), await freeUdpPort()]);
  }

  /** QEMU `-netdev` options for the next free end; a wire has two. */
  attach(id: string): string {
    if (this.attached >= 2) throw new Error(`lab: wire ${this.name} already joins two NICs`);
    const end = this.attached++;
    const local = this.ports[end];
    const remote = this.ports[1 - end];
    return `socket,id=${id},udp=127.0.0.1:${remote},localaddr=127.0.0.1:${local}`;
  }
}

/**
 * A NIC whose other end is a tap device on the host, in the network namespace QEMU runs in (see
 * {@link NetNs}): how frames leave the VMs for a host-side program such as the coordinator. The
 * tap must exist before QEMU starts; QEMU only opens it.
 */
export class TapCable implements Cable {
  constructor(readonly name: string) {}

  attach(id: string): string {
    return `tap,id=${id},ifname=${this.name},script=no,downscript=no`;
  }
}
