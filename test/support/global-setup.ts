/**
 * Global set-up of the `integration` project: a Docker engine that answers,
 * the fixture images, and the registry for pull tests. Containers that tests
 * create directly carry the label `meca.test=1` and are removed before and
 * after the run; executor containers are left to the tests that made them.
 *
 * When the engine cannot be had, the run fails with one message that says
 * how to install it, and the teardown has nothing to clean.
 */
import { buildFixtures, ensureDocker, ensureRegistry, removeTestContainers } from "./docker-env.ts";

let engineReady = false;

export async function setup(): Promise<void> {
  try {
    await ensureDocker();
  } catch (e) {
    const err = new Error(`The integration tests need a Docker engine. ${(e as Error).message}`);
    err.stack = err.message; // the reason is the message; a stack trace here only hides it
    throw err;
  }
  engineReady = true;
  removeTestContainers();
  buildFixtures();
  await ensureRegistry();
}

export function teardown(): void {
  if (engineReady) removeTestContainers();
}
