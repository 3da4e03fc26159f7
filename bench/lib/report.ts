/** The benchmark's figures as a markdown table (printed and written) and as JSON. */
import { round } from "./stats.ts";

export interface Row {
  metric: string;
  executor: string;
  other: string;
  ratio: string;
  target: string;
  /** undefined: no target for this row. */
  met?: boolean;
}

export interface Machine {
  cpu: string;
  cores: number;
  memMB: number;
  kernel: string;
  docker: string;
  node: string;
}

export const ms = (v: number | undefined): string =>
  v === undefined || !Number.isFinite(v) ? "—" : `${round(v)}`;
export const x = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}×` : "—");
export const plus = (v: number): string =>
  Number.isFinite(v) ? `${v >= 0 ? "+" : ""}${v.toFixed(3)} ms` : "—";

export function markdown(o: {
  title: string;
  machine: Machine;
  notes: string[];
  rows: Row[];
}): string {
  const m = o.machine;
  const head = [
    `### ${o.title}`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${Math.round(m.memMB / 1024)} GiB; Linux ${m.kernel}; Docker ${m.docker}; Node ${m.node}.`,
    "",
    ...o.notes.map((n) => `- ${n}`),
    "",
    "| metric | executor | direct / raw | difference or ratio | target | met |",
    "| --- | ---: | ---: | ---: | --- | --- |",
  ];
  const rows = o.rows.map(
    (r) =>
      `| ${r.metric} | ${r.executor} | ${r.other} | ${r.ratio} | ${r.target} | ${r.met === undefined ? "" : r.met ? "yes" : "**no**"} |`,
  );
  return `${[...head, ...rows].join("\n")}\n`;
}
