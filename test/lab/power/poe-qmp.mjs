#!/usr/bin/env node
// The lab's PoE wiring: `pifleet switch-emulator --exec` runs this as `poe-qmp.mjs PORT on|off`
// after each power change on a switch port. It drives the VM on that port through QEMU's machine
// protocol, as the port's power would drive a Pi: off = the CPU stops dead (no ACPI, no warning,
// nothing more on the wire); on = a reset and run, a cold boot that netboots again. A port turned
// on that is already running is left alone. $PIFLEET_LAB_POWER_MAP names a JSON file
// {"<port>": "<QMP socket of that VM's power supply>"}; each act is appended to
// $PIFLEET_LAB_POWER_LOG as a JSON line with the time, so the test can show the sequence.
import { appendFileSync, readFileSync } from "node:fs";
import net from "node:net";

const [port, state] = process.argv.slice(2);
if (!/^\d+$/.test(port ?? "") || !["on", "off"].includes(state)) {
  process.stderr.write("usage: poe-qmp.mjs PORT on|off\n");
  process.exit(2);
}
const map = JSON.parse(readFileSync(process.env.PIFLEET_LAB_POWER_MAP, "utf8"));
const socketPath = map[port];
const log = (entry) => {
  if (process.env.PIFLEET_LAB_POWER_LOG) appendFileSync(process.env.PIFLEET_LAB_POWER_LOG, `${JSON.stringify({ at: new Date().toISOString(), port: Number(port), state, ...entry })}\n`);
};
if (!socketPath) {
  log({ act: "none", why: "no VM on this port" });
  process.exit(0);
}

function qmp(path) {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(path);
    let buffer = "";
    let id = 0;
    const pending = new Map();
    let greeted;
    const ready = new Promise((r) => (greeted = r));
    socket.setEncoding("utf8");
    socket.on("error", reject);
    socket.on("data", (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const msg = JSON.parse(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        if (msg.QMP) greeted();
        else if (msg.id !== undefined) {
          const p = pending.get(msg.id);
          pending.delete(msg.id);
          if (msg.error) p.reject(new Error(`${msg.error.class}: ${msg.error.desc}`));
          else p.resolve(msg.return);
        }
      }
    });
    const execute = (command) =>
      new Promise((res, rej) => {
        const n = ++id;
        pending.set(n, { resolve: res, reject: rej });
        socket.write(`${JSON.stringify({ execute: command, id: n })}\n`);
      });
    ready.then(() => execute("qmp_capabilities")).then(() => resolve({ execute, close: () => socket.end() }), reject);
  });
}

try {
  const vm = await qmp(socketPath);
  const { status } = await vm.execute("query-status");
  if (state === "off") {
    if (status === "running") await vm.execute("stop");
    log({ act: status === "running" ? "power-off" : "none", was: status });
  } else if (status === "running") {
    log({ act: "none", was: status });
  } else {
    await vm.execute("system_reset");
    await vm.execute("cont");
    log({ act: "cold-boot", was: status });
  }
  vm.close();
} catch (err) {
  log({ act: "error", error: err.message });
  process.stderr.write(`poe-qmp: port ${port} ${state}: ${err.message}\n`);
  process.exit(1);
}
