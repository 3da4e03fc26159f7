/** Request bodies, validated once here (docs/api.md). Unknown fields are ignored. */
import { z } from "zod";
import { BadRequestError } from "../engine/errors.ts";
import { isWholeTenths, toIntent, type TaskIntent } from "../engine/task-spec.ts";

const resource = z
  .object({
    cpu: z
      .number({ invalid_type_error: "must be a number" })
      .min(0, "must be greater than 0")
      .refine(isWholeTenths, "must be in steps of 0.1 core (e.g. 0.5, 1, 2.5)")
      .optional(),
    mem: z
      .number({ invalid_type_error: "must be a whole number of MB" })
      .int("must be a whole number of MB")
      .min(0, "must be a positive whole number of MB")
      .optional(),
    use_gpu: z.boolean({ invalid_type_error: "must be true or false" }).optional(),
    // 0 with use_gpu means one GPU, as in the original executor.
    gpu_count: z
      .number({ invalid_type_error: "must be a whole number" })
      .int("must be a whole number")
      .min(0, "must be 0 or more")
      .optional(),
  })
  .passthrough();

export const executeSchema = z
  .object({
    id: z
      .string({
        required_error: "is required",
        invalid_type_error: "must be a string (an image reference)",
      })
      .min(1, "must not be empty"),
    resource: resource.nullish(),
    runtime: z
      .string({ invalid_type_error: 'must be "", "container" or "microVM"' })
      .refine(
        (r) => r === "" || r === "container" || r === "microVM",
        (r) => ({
          message: `must be "", "container" or "microVM", not ${JSON.stringify(r.slice(0, 40))}`,
        }),
      )
      .nullish(),
    input: z.string({ invalid_type_error: "must be a string" }).nullish(),
    use_sgx: z.boolean({ invalid_type_error: "must be true or false" }).nullish(),
  })
  .passthrough();

/** A request body as JSON, or a BadRequestError that says why it is not. */
export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BadRequestError(`Request body is not valid JSON: ${(e as Error).message}`, {
      code: "INVALID_JSON",
    });
  }
}

/** Turns a parsed JSON body into an intent and its input, or a BadRequestError naming the field. */
export function parseExecute(body: unknown): { intent: TaskIntent; input: string } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new BadRequestError('Request body must be a JSON object with at least "id"', {
      code: "INVALID_BODY",
    });
  }
  body = plainShape(body as Record<string, unknown>);
  const fast = parseValid(body as Record<string, unknown>);
  if (fast) return fast;
  const r = executeSchema.safeParse(body);
  if (!r.success) throw fieldError(r.error);
  return toIntent(r.data);
}

/** The first zod issue as `Field "a.b" <reason>`. */
export function fieldError(error: z.ZodError): BadRequestError {
  const issue = error.issues[0]!;
  const field = clip(issue.path.join("."));
  if (issue.code === "unrecognized_keys") {
    const key = clip(`${field ? `${field}.` : ""}${issue.keys[0]}`);
    return new BadRequestError(`Field "${key}" is not a known key`, { field: key });
  }
  return new BadRequestError(`Field "${field || "(body)"}" ${issue.message}`, { field });
}

/** Field names come from the client: a 1 MB key must not come back whole. */
function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * The same rules as `executeSchema` for a body that passes them, without zod's
 * allocations; undefined for anything else, which zod then explains.
 */
function parseValid(b: Record<string, unknown>): { intent: TaskIntent; input: string } | undefined {
  const { id, resource, runtime, input, use_sgx } = b;
  if (typeof id !== "string" || id.length === 0) return undefined;
  if (!(runtime == null || runtime === "" || runtime === "container" || runtime === "microVM"))
    return undefined;
  if (!(input == null || typeof input === "string")) return undefined;
  if (!(use_sgx == null || typeof use_sgx === "boolean")) return undefined;
  if (resource != null) {
    if (typeof resource !== "object" || Array.isArray(resource)) return undefined;
    const { cpu, mem, use_gpu, gpu_count } = resource as Record<string, unknown>;
    if (cpu !== undefined && !(typeof cpu === "number" && cpu >= 0 && isWholeTenths(cpu)))
      return undefined;
    if (mem !== undefined && !(typeof mem === "number" && Number.isInteger(mem) && mem >= 0))
      return undefined;
    if (use_gpu !== undefined && typeof use_gpu !== "boolean") return undefined;
    if (
      gpu_count !== undefined &&
      !(typeof gpu_count === "number" && Number.isInteger(gpu_count) && gpu_count >= 0)
    )
      return undefined;
  }
  return toIntent(b as Parameters<typeof toIntent>[0]);
}

/**
 * Where the MECA clients put each field of the intent, the plain shape first: the host actor
 * sends the task's config.json as `resource` (`resource.resource.cpu`), the desktop app's task
 * test sends `resource.task_cpu` and camelCase flags at the top level.
 */
const ALIASES = {
  "resource.cpu": ["resource.resource.cpu", "resource.task_cpu"],
  // `memory`: the SGX sample task's config.json says it, and the host actor sends that file whole.
  "resource.mem": [
    "resource.resource.mem",
    "resource.task_mem",
    "resource.memory",
    "resource.resource.memory",
  ],
  "resource.use_gpu": ["resource.resource.use_gpu", "useGpu"],
  "resource.gpu_count": ["resource.resource.gpu_count", "gpuCount"],
  use_sgx: ["useSgx"],
} as const;

type Field = keyof typeof ALIASES;

const FIELD_SCHEMAS: Record<Field, z.ZodTypeAny> = {
  "resource.cpu": resource.shape.cpu,
  "resource.mem": resource.shape.mem,
  "resource.use_gpu": resource.shape.use_gpu,
  "resource.gpu_count": resource.shape.gpu_count,
  use_sgx: executeSchema.shape.use_sgx,
};

/**
 * A body in the clients' other shapes rewritten into the plain one; the body itself when it uses
 * no other shape. Each value is checked where the client put it, so errors name that field; two
 * shapes giving one field different values is a 400 naming both.
 */
export function plainShape(body: Record<string, unknown>): Record<string, unknown> {
  const res = body.resource;
  // A `resource` that is not an object is the plain shape's error to report, whatever else came.
  if (res !== undefined && res !== null && !isObject(res)) return body;
  const nested = isObject(res) ? res.resource : undefined;
  if (
    body.useGpu === undefined &&
    body.gpuCount === undefined &&
    body.useSgx === undefined &&
    (!isObject(res) ||
      (nested === undefined &&
        res.task_cpu === undefined &&
        res.task_mem === undefined &&
        res.memory === undefined))
  ) {
    return body;
  }
  if (nested !== undefined && nested !== null && !isObject(nested)) {
    throw new BadRequestError(
      `Field "resource.resource" must be an object (the task's config.json "resource")`,
      { field: "resource.resource" },
    );
  }
  const plain: Record<string, unknown> = { ...body };
  const resourceOut: Record<string, unknown> = isObject(res) ? { ...res } : {};
  for (const [field, aliases] of Object.entries(ALIASES) as [Field, readonly string[]][]) {
    let chosen: { path: string; value: unknown } | undefined;
    for (const path of [field, ...aliases]) {
      const value = lookup(body, path);
      if (value === undefined || value === null) continue;
      const r = FIELD_SCHEMAS[field].safeParse(value);
      if (!r.success)
        throw new BadRequestError(`Field "${path}" ${r.error.issues[0]!.message}`, { field: path });
      if (chosen === undefined) chosen = { path, value };
      else if (chosen.value !== value) {
        throw new BadRequestError(
          `Fields "${chosen.path}" and "${path}" disagree: ${JSON.stringify(chosen.value)} and ${JSON.stringify(value)}`,
          {
            field: path,
            code: "CONFLICTING_FIELDS",
          },
        );
      }
    }
    if (chosen === undefined) continue;
    if (field === "use_sgx") plain.use_sgx = chosen.value;
    else resourceOut[field.slice("resource.".length)] = chosen.value;
  }
  if (Object.keys(resourceOut).length > 0 || isObject(res)) plain.resource = resourceOut;
  return plain;
}

function lookup(body: Record<string, unknown>, path: string): unknown {
  let v: unknown = body;
  for (const part of path.split(".")) {
    if (!isObject(v)) return undefined;
    v = v[part];
  }
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
