import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources of every workspace package, not stale builds.
    alias: [
      { find: /^@pifleet\/core\/runtime$/, replacement: `${root}packages/core/src/runtime/index.ts` },
      { find: /^@pifleet\/proto\/codec$/, replacement: `${root}packages/proto/src/codec.ts` },
      { find: /^@pifleet\/proto\/sample$/, replacement: `${root}packages/proto/src/sample.ts` },
      { find: /^@pifleet\/([a-z-]+)$/, replacement: `${root}packages/$1/src/index.ts` },
    ],
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Two cores: end-to-end suites start real servers; more workers only add contention.
    maxWorkers: 2,
  },
});
