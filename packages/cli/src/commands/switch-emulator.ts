import { execFile } from "node:child_process";
import { Command, InvalidArgumentError } from "commander";
import { createLogger, loadFleet, plan, readSecret, shelfOf, UnknownNameError, type Fleet } from "@pifleet/core";
import { plannedPorts, startSwitchEmulator, type EmulatorUser, type SwitchEmulatorOptions } from "@pifleet/switch";
import { UsageError } from "../usage-error.js";

interface EmulatorFlags {
  fleet?: string;
  shelf?: string;
  ports?: number;
  listen?: string;
  community?: string;
  rwCommunity?: string;
  user: string[];
  state?: string;
  cisco?: boolean;
  group?: number;
  selfPowered?: number[];
  exec?: string;
  portsOff?: boolean;
}

const positiveInt = (what: string) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a positive integer`);
  return n;
};

/** `host:port`, `[v6]:port` or `port`. */
function parseListen(text: string): { address: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--listen: want HOST:PORT (e.g. 127.0.0.1:16161), got "${text}"`);
  return { address: m[1] || m[2] || "127.0.0.1", port };
}

/** NAME:AUTHKEY:PRIVKEY[:AUTHPROTO[:PRIVPROTO]] */
function parseUser(text: string): EmulatorUser {
  const [name, authKey, privKey, authProtocol = "sha", privProtocol = "aes", ...rest] = text.split(":");
  if (!name || !authKey || !privKey || rest.length > 0) throw new UsageError("--user: want NAME:AUTHKEY:PRIVKEY[:AUTHPROTO[:PRIVPROTO]]");
  if (!["md5", "sha", "sha224", "sha256", "sha384", "sha512"].includes(authProtocol)) throw new UsageError(`--user ${name}: unknown auth protocol "${authProtocol}"`);
  if (!["des", "aes", "aes256b", "aes256r"].includes(privProtocol)) throw new UsageError(`--user ${name}: unknown privacy protocol "${privProtocol}"`);
  return { name, authKey, privKey, authProtocol: authProtocol as EmulatorUser["authProtocol"], privProtocol: privProtocol as EmulatorUser["privProtocol"] };
}

/** The emulator a fleet file expects of one shelf's switch: its address, ports, PoE group and driver, and its credentials. */
function fromFleet(fleet: Fleet, shelfName: string | undefined): SwitchEmulatorOptions {
  let shelf;
  try {
    shelf = shelfOf(plan(fleet), shelfName);
  } catch (err) {
    if (err instanceof UnknownNameError) throw new UsageError(`--shelf: ${err.message}`);
    throw err;
  }
  const spec = fleet.shelves.find((s) => s.name === shelf.name)!;
  const sw = spec.switch;
  const highest = Math.max(...plannedPorts(shelf.switch), ...sw.uplinkPorts);
  const secret = (field: string, ref: Parameters<typeof readSecret>[0]): string => {
    try {
      return readSecret(ref);
    } catch (err) {
      throw new UsageError(`${spec.at}switch.snmp.${field}: ${(err as Error).message}`);
    }
  };
  const options: SwitchEmulatorOptions = {
    address: sw.address,
    port: sw.snmpPort,
    // Switches come in multiples of 8 ports; at least 24.
    ports: Math.max(24, Math.ceil(highest / 8) * 8),
    group: sw.poe.group,
    cisco: sw.poe.driver === "cisco",
    sysName: sw.name,
    // The fileserver on the trunk has its own supply.
    selfPowered: [sw.trunkPort, ...sw.uplinkPorts],
  };
  if (sw.snmp.version === "2c") {
    options.rwCommunity = secret("community", sw.snmp.community);
    options.community = sw.snmp.readCommunity ? secret("readCommunity", sw.snmp.readCommunity) : options.rwCommunity === "public" ? null : "public";
  } else {
    options.users = [
      {
        name: sw.snmp.user,
        authProtocol: sw.snmp.authProtocol,
        authKey: secret("authKey", sw.snmp.authKey),
        privProtocol: sw.snmp.privProtocol,
        privKey: secret("privKey", sw.snmp.privKey),
      },
    ];
  }
  return options;
}

export function registerSwitchEmulator(program: Command): void {
  program
    .command("switch-emulator")
    .description("run an emulated PoE switch over real SNMP (POWER-ETHERNET, Q-BRIDGE, BRIDGE, IF-MIB) until stopped")
    .option("--fleet <file>", "take address, port count, PoE group/driver and credentials from a fleet file")
    .option("--shelf <name>", "with --fleet: which shelf's switch to be (needed when the fleet has several)")
    .option("--ports <n>", "number of ports (default 24)", positiveInt("--ports"))
    .option("--listen <host:port>", "UDP address to listen on (default 127.0.0.1:16161)")
    .option("--community <name>", "read-only community (default public)")
    .option("--rw-community <name>", "read-write community (default private)")
    .option("--user <spec>", "SNMPv3 authPriv user NAME:AUTHKEY:PRIVKEY[:sha[:aes]] (repeatable)", (v: string, all: string[]) => [...all, v], [] as string[])
    .option("--state <file>", "keep the switch's state in this JSON file (loaded at start, rewritten on change)")
    .option("--cisco", "also serve CISCO-POWER-ETHERNET-EXT-MIB (for switch.poe.driver: cisco)")
    .option("--group <n>", "PoE group (module) number (default 1)", positiveInt("--group"))
    .option("--self-powered <ports>", "comma-separated ports whose device has its own supply (link up without PoE)", (v: string) =>
      v.split(",").map((p) => {
        const n = Number(p.trim());
        if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`--self-powered: "${p}" is not a port`);
        return n;
      }),
    )
    .option("--exec <command>", "run COMMAND PORT on|off after each power change (e.g. to power a VM)")
    .option("--ports-off", "start with PoE off on every port, as a shelf whose power just came back (ignored when --state has a saved state)")
    .action(async (flags: EmulatorFlags) => {
      const options: SwitchEmulatorOptions = flags.fleet ? fromFleet(loadFleet(flags.fleet), flags.shelf) : { address: "127.0.0.1", port: 16161 };
      if (flags.listen) Object.assign(options, parseListen(flags.listen));
      if (flags.ports) options.ports = flags.ports;
      if (flags.community) options.community = flags.community;
      if (flags.rwCommunity) options.rwCommunity = flags.rwCommunity;
      if (flags.user.length) options.users = [...(options.users ?? []), ...flags.user.map(parseUser)];
      if (flags.state) options.stateFile = flags.state;
      if (flags.cisco) options.cisco = true;
      if (flags.group) options.group = flags.group;
      if (flags.selfPowered) options.selfPowered = flags.selfPowered;
      if (flags.portsOff) options.initialPower = false;
      const log = createLogger("switch-emulator");
      if (flags.exec) {
        const command = flags.exec;
        options.onPowerChange = (port, on) =>
          new Promise<void>((resolve) =>
            execFile(command, [String(port), on ? "on" : "off"], (err) => {
              if (err) log.error({ port, on, command, error: err.message }, "--exec command failed");
              resolve();
            }),
          );
      }
      let emulator;
      try {
        emulator = await startSwitchEmulator({ ...options, logger: log });
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(err.message);
        throw err;
      }
      const creds = [options.community !== null ? "read-only community" : "", options.rwCommunity !== null ? "read-write community" : "", ...(options.users ?? []).map((u) => `v3 user ${u.name}`)].filter(Boolean);
      process.stdout.write(
        `switch emulator listening on udp ${emulator.address}:${emulator.port}: ${emulator.state.ports} ports, PoE group ${emulator.state.group}${options.cisco ? ", Cisco PoE MIB" : ""}; ${creds.join(", ")}\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await emulator.stop();
    });
}
