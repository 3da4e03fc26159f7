/**
 * The bounds on request input: a limit per route, checked on the declared length before a byte is
 * read and on every chunk while it is read, and one budget for the input that all requests
 * together hold in memory. No reading here: body.ts (Web) and node-body.ts (Node) both count with it.
 */
import { OverloadedError } from "../engine/errors.ts";
import { PayloadTooLargeError } from "./errors.ts";

/** Bytes of request input held in memory by all requests together; what a request took is given back when it ends. */
export class InputBudget {
  readonly max: number;
  #used = 0;

  constructor(max: number) {
    this.max = max;
  }

  get used(): number {
    return this.#used;
  }

  take(n: number): boolean {
    if (this.#used + n > this.max) return false;
    this.#used += n;
    return true;
  }

  give(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }
}

/** One request's limits: its route's and its share of the shared budget. */
export class BodyLimits {
  readonly #max: number;
  readonly #budget: InputBudget | undefined;
  #size = 0;
  /** Bytes this request holds from the budget. */
  held = 0;

  constructor(max: number, budget?: InputBudget) {
    this.#max = max;
    this.#budget = budget;
  }

  /** Throws before reading when the declared Content-Length is past the limit. */
  checkDeclared(contentLength: string | string[] | null | undefined): void {
    if (Number(contentLength) > this.#max) throw new PayloadTooLargeError(this.#max);
  }

  /** Counts a chunk; returns the error to answer with when it goes past a limit. */
  count(n: number): Error | undefined {
    this.#size += n;
    if (this.#size > this.#max) return this.#drop(new PayloadTooLargeError(this.#max));
    if (this.#budget === undefined) return undefined;
    if (!this.#budget.take(n)) {
      return this.#drop(
        new OverloadedError(
          `Too much request input in memory (max_buffered_input_bytes ${this.#budget.max}); retry later`,
        ),
      );
    }
    this.held += n;
    return undefined;
  }

  /** Gives back what this request holds. */
  release(): void {
    this.#budget?.give(this.held);
    this.held = 0;
  }

  #drop(err: Error): Error {
    this.release();
    return err;
  }
}
