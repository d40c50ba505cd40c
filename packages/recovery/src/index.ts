export * from "./types.js";
export * from "./engine.js";
export * from "./dark-share.js";
export * from "./guards.js";
export * from "./rate-limit.js";
export * from "./waves.js";
