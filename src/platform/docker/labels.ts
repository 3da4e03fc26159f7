/**
 * What marks the Docker engine's containers and networks as an executor instance's: its labels,
 * built in one place. The engine never sees them (see docs/architecture.md, "The task runtime").
 */

/** Each task's own network is a /28 of the pool: its gateway, the task, the executor, spare room. */
export const TASK_SUBNET_BITS = 28;

export const LABELS = {
  managed: "meca.executor",
  instance: "meca.executor.instance",
  key: "meca.executor.key",
  image: "meca.executor.image",
  /** Which run of the executor created it: leftovers are those of other runs. */
  run: "meca.executor.run",
  /** The task's spec as JSON: what adoption reads back its key from (docs/architecture.md, "Adoption"). */
  spec: "meca.executor.spec",
  /** On networks: "task" for a task network of the executor's own. */
  network: "meca.executor.network",
  /** On a spare network's holder (netns-holder.ts): the instance it belongs to (not `instance`: it is no task). */
  holderOf: "meca.executor.holder-of",
  /** On a holder: the name of the network whose namespace it holds. */
  holds: "meca.executor.holds",
} as const;

/**
 * The labels that mark what an executor instance owns, the one place they are built: every
 * container and task network of the instance; with `run`, those of one run of it; with
 * `taskNetwork`, its task networks.
 */
export function ownership(
  instance: string,
  o: { run?: string; taskNetwork?: boolean } = {},
): Record<string, string> {
  const labels: Record<string, string> = { [LABELS.managed]: "1", [LABELS.instance]: instance };
  if (o.run !== undefined) labels[LABELS.run] = o.run;
  if (o.taskNetwork) labels[LABELS.network] = "task";
  return labels;
}

/**
 * The labels of the holders of an instance's task networks (netns-holder.ts); with `run`, of one
 * run; with `network`, the holder of that network. Not the tasks' `instance` label: a holder is
 * never listed, watched or adopted as a task.
 */
export function holderLabels(
  instance: string,
  o: { run?: string; network?: string } = {},
): Record<string, string> {
  const labels: Record<string, string> = { [LABELS.managed]: "1", [LABELS.holderOf]: instance };
  if (o.run !== undefined) labels[LABELS.run] = o.run;
  if (o.network !== undefined) labels[LABELS.holds] = o.network;
  return labels;
}
