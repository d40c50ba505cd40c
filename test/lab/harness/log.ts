import { createLogger } from "@pifleet/core";

export const labLog = createLogger("lab");
