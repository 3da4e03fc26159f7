/**
 * Global set-up of the `integration` project: a Docker engine that answers,
 * the fixture images, and the registry for pull tests. Containers that tests
 * create directly carry the label `meca.test=1` and are removed before and
 * after the run; executor containers are left to the tests that made them.
 */
import { buildFixtures, ensureDocker, ensureRegistry, removeTestContainers } from "./docker-env.ts";

export async function setup(): Promise<void> {
  await ensureDocker();
  removeTestContainers();
  buildFixtures();
  await ensureRegistry();
}

export function teardown(): void {
  removeTestContainers();
}
