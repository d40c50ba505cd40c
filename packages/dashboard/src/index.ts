import { fileURLToPath } from "node:url";

/** Folder the coordinator serves at `/`: index.html, style.css and the bundled app.js. */
export const dashboardDir = fileURLToPath(new URL("./public/", import.meta.url));
