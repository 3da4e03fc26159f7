/** Request bodies, validated once here (DESIGN §1). Unknown fields are ignored. */
import { z } from "zod";
import { BadRequestError } from "../engine/errors.ts";
import { isWholeTenths, type TaskIntent } from "../engine/task-spec.ts";


const resource = z
  .object({
    cpu: z.number({ invalid_type_error: "must be a number" }).min(0, "must be greater than 0").refine(isWholeTenths, "must be in steps of 0.1 core (e.g. 0.5, 1, 2.5)").optional(),
    mem: z.number({ invalid_type_error: "must be a whole number of MB" }).int("must be a whole number of MB").min(0, "must be a positive whole number of MB").optional(),
    use_gpu: z.boolean({ invalid_type_error: "must be true or false" }).optional(),
    gpu_count: z.number({ invalid_type_error: "must be a whole number" }).int("must be a whole number").min(1, "must be at least 1").optional(),
  })
  .passthrough();

export const executeSchema = z
  .object({
    id: z.string({ required_error: "is required", invalid_type_error: "must be a string (an image reference)" }).min(1, "must not be empty"),
    resource: resource.nullish(),
    runtime: z
      .string({ invalid_type_error: 'must be "", "container" or "microVM"' })
      .refine((r) => r === "" || r === "container" || r === "microVM", (r) => ({ message: `must be "", "container" or "microVM", not ${JSON.stringify(r.slice(0, 40))}` }))
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
    throw new BadRequestError(`Request body is not valid JSON: ${(e as Error).message}`, { code: "INVALID_JSON" });
  }
}

/** Turns a parsed JSON body into an intent and its input, or a BadRequestError naming the field. */
export function parseExecute(body: unknown): { intent: TaskIntent; input: string } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new BadRequestError("Request body must be a JSON object with at least \"id\"", { code: "INVALID_BODY" });
  }
  const fast = parseValid(body as Record<string, unknown>);
  if (fast) return fast;
  const r = executeSchema.safeParse(body);
  if (!r.success) throw fieldError(r.error);
  return toIntent(r.data);
}

/** A body that passed the rules, as the engine's intent and the task's input. */
function toIntent(b: {
  id: string;
  resource?: { cpu?: number; mem?: number; use_gpu?: boolean; gpu_count?: number } | null;
  runtime?: string | null;
  input?: string | null;
  use_sgx?: boolean | null;
}): { intent: TaskIntent; input: string } {
  return {
    intent: {
      image: b.id,
      cpu: b.resource?.cpu,
      mem: b.resource?.mem,
      useGpu: b.resource?.use_gpu === true,
      gpuCount: b.resource?.gpu_count,
      runtime: b.runtime ?? "",
      useSgx: b.use_sgx === true,
    },
    input: b.input ?? "",
  };
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
  if (!(runtime == null || runtime === "" || runtime === "container" || runtime === "microVM")) return undefined;
  if (!(input == null || typeof input === "string")) return undefined;
  if (!(use_sgx == null || typeof use_sgx === "boolean")) return undefined;
  if (resource != null) {
    if (typeof resource !== "object" || Array.isArray(resource)) return undefined;
    const { cpu, mem, use_gpu, gpu_count } = resource as Record<string, unknown>;
    if (cpu !== undefined && !(typeof cpu === "number" && cpu >= 0 && isWholeTenths(cpu))) return undefined;
    if (mem !== undefined && !(typeof mem === "number" && Number.isInteger(mem) && mem >= 0)) return undefined;
    if (use_gpu !== undefined && typeof use_gpu !== "boolean") return undefined;
    if (gpu_count !== undefined && !(typeof gpu_count === "number" && Number.isInteger(gpu_count) && gpu_count >= 1)) return undefined;
  }
  return toIntent(b as Parameters<typeof toIntent>[0]);
}
