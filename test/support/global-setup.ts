/**
 * Global set-up of the `integration` project: a Docker engine that answers,
 * the fixture images, and the registry for pull tests. Containers that tests
 * create directly carry the label `meca.test=1` and are removed before and
 * after the run; executor containers are left to the tests that made them.
 *
 * When the engine cannot be had, the run fails with one message that says
 * how to install it, and the teardown has nothing to clean.
 */
import { readdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
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
  if (!engineReady) return;
  removeTestContainers();
  removeTestTaskParents();
}

/**
 * The tasks' parent cgroups of the tests' executors that ran in containers (the image and network
 * tests): there the executor cannot remove them (docs/isolation.md), so the run does. Only the
 * tests' instances, and only empty ones (rmdir): a real executor's parent is never touched.
 */
function removeTestTaskParents(): void {
  const root = "/sys/fs/cgroup";
  let hierarchies: string[] = [];
  try {
    hierarchies = readdirSync(root);
  } catch {
    return;
  }
  for (const h of [root, ...hierarchies.map((c) => join(root, c))]) {
    let names: string[] = [];
    try {
      names = readdirSync(h).filter((n) => /^meca-tasks-(test|image|network)-/.test(n));
    } catch {
      continue;
    }
    for (const n of names) {
      try {
        rmdirSync(join(h, n));
      } catch {
        // in use, or not a folder: not the tests' to remove
      }
    }
  }
}
