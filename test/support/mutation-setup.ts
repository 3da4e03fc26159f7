/**
 * For mutation runs: property tests draw the same cases for every mutant, so a score replays;
 * a counterexample is not shrunk (the first failure already kills the mutant).
 */
import fc from "fast-check";

fc.configureGlobal({ seed: 20261130, endOnFailure: true });
