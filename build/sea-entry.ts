/**
 * Entry of the bundle inside the single executable. `src/main.ts` runs itself
 * only when it is the ES module entry; the bundle is CommonJS (a Node SEA's
 * main script must be), so this file calls it instead.
 */
import { main } from "../src/main.ts";

main(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (e) => {
    console.error(`meca-executor failed: ${(e as Error).message}`);
    process.exit(1);
  },
);
