"use strict";
// What the executable bundles for `import ... from "systeminformation"`: the CPU and memory
// readings src/platform/host.ts uses, not the library's 30 other modules (disks, network,
// Docker, VirtualBox, printers, Wi-Fi, ...) that its index.js loads at start-up.
const cpu = require("systeminformation/lib/cpu");
const memory = require("systeminformation/lib/memory");

module.exports.cpu = cpu.cpu;
module.exports.currentLoad = cpu.currentLoad;
module.exports.mem = memory.mem;
