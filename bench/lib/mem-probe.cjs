// Preloaded by the benchmark (NODE_OPTIONS=--require) into the executor, the empty Node process
// and the reference forwarder alike: on SIGUSR2 it writes what V8 and Node say about memory to
// $MECA_BENCH_MEM_DIR/mem-<pid>.json. Nothing else; the process never calls it by itself.
"use strict";
const v8 = require("node:v8");
const { writeFileSync, renameSync } = require("node:fs");
const dir = process.env.MECA_BENCH_MEM_DIR;
if (dir) {
  process.on("SIGUSR2", () => {
    const file = `${dir}/mem-${process.pid}.json`;
    const body = {
      memoryUsage: process.memoryUsage(),
      heap: v8.getHeapStatistics(),
      code: v8.getHeapCodeStatistics(),
      spaces: v8.getHeapSpaceStatistics().map((s) => ({
        name: s.space_name,
        physical: s.physical_space_size,
        used: s.space_used_size,
      })),
    };
    writeFileSync(`${file}.tmp`, JSON.stringify(body));
    renameSync(`${file}.tmp`, file);
  });
}
