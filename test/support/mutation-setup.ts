/** For mutation runs: property tests draw the same cases for every mutant, so a score replays. */
import fc from "fast-check";

fc.configureGlobal({ seed: 20261130 });
