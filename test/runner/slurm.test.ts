import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Exec,
  execCommand,
  jobEndTimeMs,
  parseSqueueEndTime,
  parseSqueueJobLine,
  parseTimeLeft,
  readJobEndTime,
  readSlurmContext,
} from "../../runner/slurm";

describe("readSlurmContext", () => {
  test("returns null outside a Slurm job", () => {
    expect(readSlurmContext({ PATH: "/usr/bin" })).toBeNull();
  });

  test("reads the job, array job and array task ids of an array task", () => {
    const ctx = readSlurmContext({ SLURM_JOB_ID: "4312", SLURM_ARRAY_JOB_ID: "4300", SLURM_ARRAY_TASK_ID: "12" });
    expect(ctx).toEqual({ jobId: "4312", arrayJobId: "4300", arrayTaskId: "12" });
  });

  test("falls back to the older SLURM_JOBID spelling", () => {
    expect(readSlurmContext({ SLURM_JOBID: "77" })?.jobId).toBe("77");
  });

  test("turns SLURM_JOB_END_TIME seconds into ms and ignores the 0 of an unlimited job", () => {
    expect(readSlurmContext({ SLURM_JOB_ID: "1", SLURM_JOB_END_TIME: "1795556475" })?.endTimeMs).toBe(1795556475000);
    expect(readSlurmContext({ SLURM_JOB_ID: "1", SLURM_JOB_END_TIME: "0" })?.endTimeMs).toBeUndefined();
  });

  test("names the variable when an id or the end time is malformed", () => {
    expect(() => readSlurmContext({ SLURM_JOB_ID: "12a" })).toThrow(/SLURM_JOB_ID/);
    expect(() => readSlurmContext({ SLURM_JOB_ID: "1", SLURM_ARRAY_TASK_ID: "x" })).toThrow(/SLURM_ARRAY_TASK_ID/);
    expect(() => readSlurmContext({ SLURM_JOB_ID: "1", SLURM_JOB_END_TIME: "soon" })).toThrow(/SLURM_JOB_END_TIME/);
  });
});

describe("parseSqueueEndTime", () => {
  let savedTz: string | undefined;
  beforeAll(() => {
    savedTz = process.env.TZ;
  });
  afterAll(() => {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
  });

  test("reads epoch seconds, as printed under SLURM_TIME_FORMAT=%s", () => {
    expect(parseSqueueEndTime("1795556852\n")).toBe(1795556852000);
  });

  test("reads Slurm's zone-less default format as local time", () => {
    process.env.TZ = "Asia/Kolkata"; // UTC+05:30, no daylight saving
    expect(parseSqueueEndTime("2026-11-24T21:41:15")).toBe(Date.UTC(2026, 10, 24, 16, 11, 15));
    process.env.TZ = "UTC";
    expect(parseSqueueEndTime("2026-11-24T21:41:15")).toBe(Date.UTC(2026, 10, 24, 21, 41, 15));
  });

  test("returns null for the words Slurm prints when there is no end time", () => {
    for (const word of ["NONE", "N/A", "Unknown", "UNLIMITED", "0", ""]) expect(parseSqueueEndTime(word)).toBeNull();
  });

  test("rejects anything else with the text in the message", () => {
    expect(() => parseSqueueEndTime("tomorrow")).toThrow(/"tomorrow"/);
    expect(() => parseSqueueEndTime("2026-13-01T00:00:00")).toThrow(/not a valid date/);
  });
});

describe("parseTimeLeft", () => {
  test("reads minutes:seconds, hours:minutes:seconds and days-hours:minutes:seconds", () => {
    expect(parseTimeLeft("4:59")).toBe((4 * 60 + 59) * 1000);
    expect(parseTimeLeft("1:02:03")).toBe((3600 + 2 * 60 + 3) * 1000);
    expect(parseTimeLeft("2-01:02:03")).toBe(((2 * 24 + 1) * 3600 + 2 * 60 + 3) * 1000);
    expect(parseTimeLeft("0:00")).toBe(0);
  });

  test("returns null when the job has no limit", () => {
    for (const word of ["UNLIMITED", "NOT_SET", "INVALID"]) expect(parseTimeLeft(word)).toBeNull();
  });

  test("rejects malformed text", () => {
    expect(() => parseTimeLeft("90")).toThrow(/"90"/);
    expect(() => parseTimeLeft("2-01:02")).toThrow(/days but no hours/);
  });
});

describe("parseSqueueJobLine", () => {
  test("picks this task's line when squeue lists every task of an array", () => {
    // `squeue -j 11` where 11 is both the array id and the last task's own id.
    const out = "12|1795556852|4:59\n11|1795556999|7:26\n";
    expect(parseSqueueJobLine(out, "11", 0)).toEqual({ endTimeMs: 1795556999000, source: "squeue-end" });
    expect(parseSqueueJobLine(out, "12", 0)).toEqual({ endTimeMs: 1795556852000, source: "squeue-end" });
  });

  test("uses the time left when the end time is missing", () => {
    expect(parseSqueueJobLine("5|N/A|1:00:00\n", "5", 1_000)).toEqual({ endTimeMs: 3_601_000, source: "squeue-left" });
  });

  test("reports an unlimited job as having no end time", () => {
    expect(parseSqueueJobLine("5|NONE|UNLIMITED\n", "5", 0)).toEqual({ endTimeMs: null, source: "unlimited" });
  });

  test("fails when the job is not listed", () => {
    expect(() => parseSqueueJobLine("6|NONE|UNLIMITED\n", "5", 0)).toThrow(/did not list job 5/);
  });
});

describe("readJobEndTime", () => {
  const ctx = { jobId: "42", arrayJobId: null, arrayTaskId: null };

  test("prefers SLURM_JOB_END_TIME and does not run squeue", async () => {
    let calls = 0;
    const exec: Exec = async () => {
      calls++;
      return { code: 0, stdout: "", stderr: "", timedOut: false };
    };
    expect(await readJobEndTime({ ...ctx, endTimeMs: 5_000 }, { exec })).toEqual({ endTimeMs: 5_000, source: "env" });
    expect(calls).toBe(0);
  });

  test("asks squeue for this job in epoch seconds", async () => {
    let seen: { argv: string[]; env: Record<string, string | undefined>; timeoutMs: number } | null = null;
    const exec: Exec = async (argv, opts) => {
      seen = { argv, env: opts.env, timeoutMs: opts.timeoutMs };
      return { code: 0, stdout: "42|1795556852|4:59\n", stderr: "", timedOut: false };
    };
    expect(await jobEndTimeMs(ctx, { exec, timeoutMs: 1234 })).toBe(1795556852000);
    expect(seen!.argv).toEqual(["squeue", "-h", "-j", "42", "-o", "%A|%e|%L"]);
    expect(seen!.env.SLURM_TIME_FORMAT).toBe("%s");
    expect(seen!.timeoutMs).toBe(1234);
  });

  test("reports a failing, hanging or garbled squeue as unavailable instead of throwing", async () => {
    const failing: Exec = async () => ({ code: 1, stdout: "", stderr: "slurm_load_jobs error: Invalid job id specified\n", timedOut: false });
    const hanging: Exec = async () => ({ code: null, stdout: "", stderr: "", timedOut: true });
    const garbled: Exec = async () => ({ code: 0, stdout: "42|soon|later\n", stderr: "", timedOut: false });
    const throwing: Exec = async () => {
      throw new Error("spawn failed");
    };
    const a = await readJobEndTime(ctx, { exec: failing });
    expect(a).toMatchObject({ endTimeMs: null, source: "unavailable" });
    expect(a.detail).toContain("Invalid job id");
    expect((await readJobEndTime(ctx, { exec: hanging, timeoutMs: 50 })).detail).toContain("within 50 ms");
    expect((await readJobEndTime(ctx, { exec: garbled })).detail).toContain('"later"');
    expect((await readJobEndTime(ctx, { exec: throwing })).detail).toContain("spawn failed");
  });
});

describe("execCommand with a real squeue stand-in on PATH", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "baton-slurm-"));
    // Prints what a real 22.05 squeue prints for a running job: epoch seconds when
    // SLURM_TIME_FORMAT=%s, and proves the arguments arrived intact.
    await writeFile(
      join(dir, "squeue"),
      `#!/bin/sh\n[ "$SLURM_TIME_FORMAT" = "%s" ] || exit 7\n[ "$3" = "42" ] || exit 8\necho "42|1795556852|4:59"\n`,
    );
    await chmod(join(dir, "squeue"), 0o755);
    await writeFile(join(dir, "slow"), "#!/bin/sh\nexec sleep 30\n");
    await chmod(join(dir, "slow"), 0o755);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("runs squeue found on the given PATH and parses its answer", async () => {
    const env = { PATH: `${dir}:${process.env.PATH}` };
    expect(await readJobEndTime({ jobId: "42", arrayJobId: null, arrayTaskId: null }, { env })).toEqual({
      endTimeMs: 1795556852000,
      source: "squeue-end",
    });
  });

  test("kills a command that outlives its timeout", async () => {
    const started = Date.now();
    const res = await execCommand([join(dir, "slow")], { timeoutMs: 200, env: { PATH: process.env.PATH } });
    expect(res.timedOut).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test("reports a missing squeue as unavailable", async () => {
    const res = await readJobEndTime({ jobId: "1", arrayJobId: null, arrayTaskId: null }, { env: { PATH: dir + "/none" } });
    expect(res.source).toBe("unavailable");
  });
});
