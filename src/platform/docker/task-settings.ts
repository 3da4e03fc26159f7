/** What the Docker runtime is told (src/config.ts maps the config file onto it). */
export interface DockerTaskSettings {
  /** Label value that tells this executor's containers and networks from another's on the same engine. */
  instance: string;
  /** Docker network tasks join (reached by name); "" to publish on 127.0.0.1. */
  network: string;
  /** Each task on a network of its own (network: auto); otherwise `network` is shared or "" publishes. */
  isolate: boolean;
  /** IPv4 block each task's own network takes a /28 of. */
  taskSubnetPool: string;
  /** Task networks kept ready ahead of demand (task-networks.ts); 0: each start creates its own. */
  taskNetworkSpares: number;
  /** Task networks get a route out (never one to other tasks). */
  taskEgress: boolean;
  /** Capabilities dropped from every task container. */
  capDrop: readonly string[];
  /** Open-files limit of every task container. */
  nofile: number;
  pidsLimit: number;
  noNewPrivileges: boolean;
  /** Bound on a task's writable layer, asked of the engine where its storage driver can; 0: none. */
  taskDiskMB: number;
  /** SGX: the host's device and AESM socket folder, mapped into a task that asks for SGX. */
  sgx: { device: string; aesmdPath: string };
  /** HostConfig.CgroupParent of every task container (task_cpu_priority, cpu-priority.ts); "" for the engine's default. */
  cgroupParent: string;
  /** The engine's cgroup driver ("cgroupfs", "systemd") and version ("1", "2"), for the tasks' meters. */
  cgroupDriver: string;
  cgroupVersion: string;
  /** Meter each task from its cgroup (the `usage` key). */
  usage: boolean;
  /** How long a start waits for a free block of the subnet pool when every one is taken. */
  queueTimeoutMs: number;
}
