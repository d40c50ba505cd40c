export type { PowerContext, PowerDriver, PowerDriverDefinition } from "./driver.js";
export { createPowerDriver, powerDriverDefinition, powerDriverNames, registerPowerDriver, UnknownPowerDriverError } from "./registry.js";
export { poeDetection, type PoeDetection } from "./rfc3621.js";
export { powerCycle, type PowerCycleResult } from "./cycle.js";
// Built-in vendors: each registers itself on import.
import "./rfc3621.js";
import "./cisco.js";
