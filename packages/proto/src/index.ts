export { pifleet } from "../gen/pifleet.js";
export * from "./codec.js";
export * from "./hello.js";
export * from "./client.js";
