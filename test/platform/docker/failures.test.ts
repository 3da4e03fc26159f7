import { describe, expect, it } from "vitest";
import { BadRequestError, EngineUnavailableError } from "../../../src/engine/errors.ts";
import { DockerApiError } from "../../../src/platform/docker/docker-api.ts";
import { engineFailure } from "../../../src/platform/docker/failures.ts";

describe("engineFailure()", () => {
  it("turns an engine 4xx into 400 ENGINE_REJECTED that carries the engine's reason", () => {
    const err = engineFailure(
      new DockerApiError(400, "invalid reference format"),
      'Cannot inspect image "x"',
    );
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.code).toBe("ENGINE_REJECTED");
    expect(err.message).toContain("invalid reference format");
  });

  it("keeps an engine 5xx as ENGINE_UNAVAILABLE", () => {
    expect(engineFailure(new DockerApiError(500, "boom"), "Cannot list containers")).toBeInstanceOf(
      EngineUnavailableError,
    );
  });
});
