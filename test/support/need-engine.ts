/**
 * `npm test` runs this between the unit and the integration projects: it makes sure a Docker
 * engine answers (starting an installed dockerd, as the integration set-up does), and where none
 * can be had it says so in one line, with the way to get one, and exits 1, so the integration
 * project never starts only to fail inside vitest.
 */
import { ensureDocker, INSTALL_HINT } from "./docker-env.ts";

try {
  await ensureDocker();
} catch (e) {
  const why = (e as Error).message.split("\n")[0]!.replace(/ \(as root: .*\)$/, "");
  console.error(
    `The unit tests ran; the integration tests need a Docker engine and none can be had here (${why}). Run \`${INSTALL_HINT}\` (it installs and starts what the tests need, then runs them all), or point DOCKER_HOST at an engine and run npm test again.`,
  );
  process.exit(1);
}
