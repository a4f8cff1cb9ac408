// Start-up overhead of the code sandbox: how much a trivial enhance_reasoning call costs in each
// mode compared with spawning the interpreter directly.
//   bun bench/sandbox.ts [runs=30]
// Reports the median wall time per call and each mode's ratio to the bare interpreter.
import { detectSandbox, resetSandboxProbe, runPython } from "../runner/sandbox";

const runs = Number(process.argv[2] ?? 30);
const code = "print(1)";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function time(fn: () => Promise<void>): Promise<number> {
  await fn(); // warm-up (and the one-time probe)
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    xs.push(performance.now() - t);
  }
  return median(xs);
}

const { interpreter, mode } = await detectSandbox();
const bare = await time(async () => {
  const p = Bun.spawn({ cmd: [interpreter, "-I", "-B", "-c", code], stdout: "pipe", env: {} });
  await new Response(p.stdout).text();
  await p.exited;
});

const rows: [string, number][] = [["bare interpreter", bare]];
for (const want of ["auto", "subprocess"] as const) {
  process.env.BATON_SANDBOX = want;
  resetSandboxProbe();
  const label = want === "auto" ? `runPython (${mode})` : "runPython (subprocess)";
  if (want === "auto" && mode === "subprocess") continue;
  const ms = await time(async () => {
    const r = await runPython({ code, timeoutMs: 10_000, memoryMb: 256 });
    if (r.stdout !== "1\n") throw new Error(`unexpected result: ${JSON.stringify(r)}`);
  });
  rows.push([label, ms]);
}

console.log(`sandbox start-up, median of ${runs} runs of ${JSON.stringify(code)} (${interpreter})`);
for (const [label, ms] of rows) console.log(`  ${label.padEnd(24)} ${ms.toFixed(1).padStart(7)} ms   ×${(ms / bare).toFixed(2)}`);
