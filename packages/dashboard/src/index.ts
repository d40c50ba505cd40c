import { fileURLToPath } from "node:url";

/**
 * Folder the coordinator serves at `/`: index.html, style.css and the bundled app.js (built by
 * build.mjs into dist/public). Resolved from the package folder, not from this file's own folder,
 * so it is the same whether this module runs from dist/ or from src/ (tests run sources).
 */
export const dashboardDir = fileURLToPath(new URL("../dist/public/", import.meta.url));
