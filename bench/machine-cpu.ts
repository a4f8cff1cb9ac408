// The whole machine's CPU from /proc/stat's first line, in USER_HZ jiffies: busy (everything
// but idle and iowait), kernel, and total. Benchmarks read it before and after a loop to see
// what all processes and the kernel spent, which no process's own CPU time counts (a
// sandbox's namespaces and mounts). null where there is no /proc/stat.
import { readFileSync } from "node:fs";

export const MS_PER_JIFFY = 1000 / 100;

export function readMachineCpu(): { busy: number; sys: number; total: number } | null {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - f[3] - (f[4] ?? 0), sys: f[2], total };
  } catch {
    return null;
  }
}
