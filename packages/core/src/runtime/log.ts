import pino, { type Logger, type LoggerOptions } from "pino";

export type { Logger };

/**
 * JSON logs (one object per line, as journald and log shippers want); pretty only when a person
 * watches a terminal. Secrets are redacted by key wherever they appear.
 */
export function createLogger(name: string, options: LoggerOptions = {}, destination?: pino.DestinationStream): Logger {
  const level = options.level ?? process.env.PIFLEET_LOG_LEVEL ?? "info";
  const base: LoggerOptions = {
    name,
    level,
    redact: {
      paths: ["secret", "token", "community", "authKey", "privKey", "password", "*.secret", "*.token", "*.community", "*.authKey", "*.privKey", "*.password"],
      censor: "[redacted]",
    },
    ...options,
  };
  if (destination) return pino(base, destination);
  if (process.stdout.isTTY && process.env.PIFLEET_LOG_FORMAT !== "json") {
    return pino({ ...base, transport: { target: "pino-pretty", options: { colorize: true, destination: 2 } } });
  }
  // stderr keeps stdout free for a command's own output (tables, --json).
  return pino(base, pino.destination(2));
}
