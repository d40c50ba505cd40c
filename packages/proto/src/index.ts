import "./numbers.js";
export { pifleet } from "../gen/pifleet.js";
export * from "./codec.js";
export * from "./hello.js";
export * from "./client.js";
export * from "./shared-body.js";
export * from "./sample.js";
