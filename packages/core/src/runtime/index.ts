// `@pifleet/core/runtime`: what a daemon needs at run time, without the fleet model (zod, yaml,
// the planner) that the package's index loads — on a Pi that is ~12 MiB of memory never used.
export { createLogger, type Logger } from "./log.js";
export { createNotifier, NOTIFY_FD_ENV, type Notifier, type NotifyLog } from "./sd-notify.js";
export { readSecret } from "../fleet/secret.js";
