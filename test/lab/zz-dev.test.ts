import { test } from "vitest";
import { Lab } from "./harness/index.js";

test("reset timing tiny", async () => {
  const lab = await Lab.open("dev");
  for (const cpus of [1, 2]) {
    const vm = lab.tinyVm({ name: `t${cpus}`, cmdline: ["lab.after=wait", "loglevel=7"], files: { "lab/run.sh": `echo "@@LAB up $(cut -d' ' -f1 /proc/uptime)"\n` } });
    (vm.options as any).cpus = cpus;
    let t = Date.now();
    await vm.start();
    await vm.waitFor("up", 120_000);
    const first = Date.now() - t;
    await vm.powerOff(); await new Promise(r => setTimeout(r, 1000));
    t = Date.now();
    await vm.powerOn();
    await vm.waitFor("up", 300_000);
    console.log("cpus", cpus, "first", first, "second", Date.now() - t, vm.markers.map(m => m.value).join(" | "));
    await vm.stop();
  }
  await lab.close();
}, 900_000);
