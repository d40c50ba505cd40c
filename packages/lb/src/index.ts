import { registerDriver } from "./registry.js";
import { HaproxyDriver } from "./drivers/haproxy.js";

export * from "./driver.js";
export * from "./registry.js";
export { HaproxyDriver, MANAGED_ID_BASE, type HaproxyDriverOptions } from "./drivers/haproxy.js";
export { RuntimeApi, parseRuntimeAddress, type RuntimeAddress } from "./haproxy/runtime-api.js";
export { parseServersStateRows, adminStateOf, checkStatusName } from "./haproxy/servers-state.js";

registerDriver("haproxy", (options) => new HaproxyDriver(options));
