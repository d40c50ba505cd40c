export { UsageError } from "./usage-error.js";
