import { expect } from "vitest";
import { checkFleet, FleetError } from "@pifleet/core";

/** The issues `checkFleet` reports for a fleet that must be refused (a fleet accepted is a failure). */
export function issuesOf(data: unknown): FleetError["issues"] {
  try {
    checkFleet(data, "fleet.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(FleetError);
    return (err as FleetError).issues;
  }
  throw new Error("fleet was accepted");
}
