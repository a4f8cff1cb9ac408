// Start-up overhead of the code sandbox: how much a trivial enhance_reasoning call costs in each
// mode compared with spawning the interpreter directly.
//   bun bench/sandbox.ts [runs=30]
// Reports the median wall time per call and each mode's ratio to the bare interpreter, and the
// whole machine's CPU per call (/proc/stat over the loop, all processes and the kernel): a
// sandbox's namespaces and mounts cost kernel time that no process's own CPU counts, and on
// a small machine that, not the wall time, is what a run at high concurrency waits for.
import { detectSandbox, resetSandboxProbe, runPython } from "../runner/sandbox";
import { MS_PER_JIFFY, readMachineCpu } from "./machine-cpu";

const runs = Number(process.argv[2] ?? 30);
const code = "print(1)";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const machine = new Map<string, { cpu: number; sys: number }>();
async function time(fn: () => Promise<void>, label: string): Promise<number> {
  await fn(); // warm-up (and the one-time probe)
  const xs: number[] = [];
  const j0 = readMachineCpu();
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    xs.push(performance.now() - t);
  }
  const j1 = readMachineCpu();
  if (j0 && j1) machine.set(label, { cpu: ((j1.busy - j0.busy) * MS_PER_JIFFY) / runs, sys: ((j1.sys - j0.sys) * MS_PER_JIFFY) / runs });
  return median(xs);
}

const { interpreter, mode } = await detectSandbox();
const bare = await time(async () => {
  const p = Bun.spawn({ cmd: [interpreter, "-I", "-B", "-c", code], stdout: "pipe", env: {} });
  await new Response(p.stdout).text();
  await p.exited;
}, "bare interpreter");

const rows: [string, number][] = [["bare interpreter", bare]];
for (const want of ["auto", "subprocess"] as const) {
  process.env.BATON_SANDBOX = want;
  resetSandboxProbe();
  const label = want === "auto" ? `runPython (${mode})` : "runPython (subprocess)";
  if (want === "auto" && mode === "subprocess") continue;
  const ms = await time(async () => {
    const r = await runPython({ code, timeoutMs: 10_000, memoryMb: 256 });
    if (r.stdout !== "1\n") throw new Error(`unexpected result: ${JSON.stringify(r)}`);
  }, label);
  rows.push([label, ms]);
}

console.log(`sandbox start-up, median of ${runs} runs of ${JSON.stringify(code)} (${interpreter})`);
for (const [label, ms] of rows) {
  const m = machine.get(label);
  const cpu = m ? `   machine CPU ${m.cpu.toFixed(1)} ms a call (kernel ${m.sys.toFixed(1)})` : "";
  console.log(`  ${label.padEnd(24)} ${ms.toFixed(1).padStart(7)} ms   ×${(ms / bare).toFixed(2)}${cpu}`);
}
