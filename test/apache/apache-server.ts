// The private apache2 instance lives with the Pi agent's benchmark, which measures against it too.
export * from "../../packages/pi-agent/src/bench/apache-server.js";
