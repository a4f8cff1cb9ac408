// The endpoint agent: what each `baton launch` job execs. It starts one service (vLLM, a
// retrieval server, or a simulator) on a free port, waits until the service really answers,
// registers it with the Baton server as healthy, heartbeats, and on SIGTERM/SIGUSR1 or when
// the job's end time approaches drains it: runners stop sending new calls, calls in flight
// finish (up to a grace period), then it deregisters and stops the service. A service that
// dies or never becomes ready is reported with the last lines of its output, and the agent
// exits non-zero without registering anything.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { hostname } from "node:os";
import { readJobEndTime, type SlurmContext } from "./slurm";
import { readBody } from "./http-policy";

export const AGENT_ROLES = ["orchestrator", "expert_llm", "query_llm", "retrieval", "judge"] as const;
export type AgentRole = (typeof AGENT_ROLES)[number];

export type AgentOptions = {
  server: string;
  token: string | null;
  role: AgentRole;
  // the registered name: the served model (LLMs) or the retrieval backend name
  name: string;
  service: string | null;
  // the command template; {port}, {host} and {model} are filled in
  command: string;
  // address the service binds ({host}); advertised: what runners connect to
  bindHost: string;
  advertiseHost: string;
  // null: pick a free one
  port: number | null;
  readyTimeoutMs: number;
  probeQuery: string;
  probeTimeoutMs: number;
  leaseMs: number;
  heartbeatMs: number;
  graceMs: number;
  // how long runners need to notice `draining` (their registry refresh) before the service may stop
  drainSettleMs: number;
  slurm: SlurmContext | null;
  log: (line: string) => void;
};

const TAIL_LINES = 30;
const END_MARGIN_MS = 5_000;

/** A port nobody listens on right now (the OS picks it). */
export async function pickFreePort(host: string): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Fills {port}, {host} and {model}; unknown {words} are left for the shell. */
export function fillCommand(template: string, values: { port: number; host: string; model: string }): string {
  return template.replace(/\{(port|host|model)\}/g, (_, k: "port" | "host" | "model") => String(values[k]));
}

/** The command for the log: values of --api-key/--token style flags and *KEY=/*TOKEN= assignments hidden. */
export function redactCommand(command: string): string {
  return command
    .replace(/(--[\w-]*(?:api-key|token|password|secret)[\w-]*)(=|\s+)("[^"]*"|'[^']*'|\S+)/gi, "$1$2***")
    .replace(/\b([A-Z0-9_]*(?:KEY|TOKEN|PASSWORD|SECRET)[A-Z0-9_]*)=("[^"]*"|'[^']*'|\S+)/g, "$1=***");
}

/** Sum of a Prometheus gauge over its label sets; null when the metric is absent. */
export function readGauge(metrics: string, name: string): number | null {
  let total: number | null = null;
  for (const line of metrics.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== "{" && rest[0] !== " ") continue;
    const value = Number(line.trim().split(/\s+/).at(-1));
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

/**
 * A service outlives an agent killed with SIGKILL (its own process group, and without cgroup
 * tracking Slurm loses sight of orphans): this watcher, outside both, stops the service's
 * group within a second or two of the agent's death. The agent kills it when it stops itself.
 */
export function startWatchdog(agentPid: number, group: number): ChildProcess {
  const script = `while kill -0 ${agentPid} 2>/dev/null; do sleep 1; done; kill -TERM -- -${group} 2>/dev/null; sleep 5; kill -KILL -- -${group} 2>/dev/null`;
  const w = spawn("bash", ["-c", script], { detached: true, stdio: "ignore" });
  w.unref();
  return w;
}

type Fetch = (path: string, init?: RequestInit & { timeoutMs?: number }) => Promise<Response>;

export class EndpointAgent {
  private child: ChildProcess | null = null;
  private watchdog: ChildProcess | null = null;
  private childExit: Promise<{ code: number | null; signal: string | null }> | null = null;
  private exited: { code: number | null; signal: string | null } | null = null;
  private readonly tail: string[] = [];
  private endpointId: number | null = null;
  private draining: string | null = null;
  private wakeDrain: ((reason: string) => void) | null = null;
  private readonly o: AgentOptions;
  baseUrl = "";
  port = 0;

  constructor(options: AgentOptions) {
    this.o = options;
  }

  private log(line: string) {
    this.o.log(`endpoint-agent: ${line}`);
  }

  /** Asks the agent to drain and stop (signals, the job's end time). */
  drain(reason: string): void {
    if (this.draining) return;
    this.draining = reason;
    this.wakeDrain?.(reason);
  }

  /** Runs the whole lifecycle; resolves with the process exit code. */
  async run(): Promise<number> {
    this.port = this.o.port ?? (await pickFreePort(this.o.bindHost));
    this.baseUrl = `http://${this.o.advertiseHost.includes(":") ? `[${this.o.advertiseHost}]` : this.o.advertiseHost}:${this.port}`;
    const command = fillCommand(this.o.command, { port: this.port, host: this.o.bindHost, model: this.o.name });
    this.log(`starting ${this.o.role} '${this.o.name}' on ${this.o.advertiseHost}:${this.port}: ${redactCommand(command)}`);
    this.start(command);
    const endTimer = await this.scheduleEnd();
    try {
      const ready = await this.waitReady();
      if (ready !== true) return await this.failure(ready);
      if (this.draining) return await this.stopService(`${this.draining} before the service was registered`, 0);
      try {
        await this.register();
      } catch (err) {
        return await this.failure(`could not register with the Baton server at ${this.o.server}: ${(err as Error).message}`);
      }
      return await this.serve();
    } finally {
      if (endTimer) clearTimeout(endTimer);
    }
  }

  private start(command: string): void {
    // Its own process group, so stopping it stops everything it started (vLLM's workers too).
    const child = spawn("bash", ["-c", command], { detached: true, stdio: ["ignore", "pipe", "pipe"], env: process.env });
    this.child = child;
    if (child.pid != null) this.watchdog = startWatchdog(process.pid, child.pid);
    const keep = (stream: NodeJS.ReadableStream | null, out: (l: string) => void) => {
      let buf = "";
      stream?.setEncoding?.("utf8");
      stream?.on("data", (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          out(line);
          this.tail.push(line);
          if (this.tail.length > TAIL_LINES) this.tail.shift();
        }
      });
      stream?.on("end", () => {
        if (buf) {
          out(buf);
          this.tail.push(buf);
        }
      });
    };
    keep(child.stdout, (l) => process.stdout.write(`${l}\n`));
    keep(child.stderr, (l) => process.stderr.write(`${l}\n`));
    this.childExit = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exited = { code, signal };
        resolve(this.exited);
      });
      child.once("error", (err) => {
        this.tail.push(`spawn failed: ${err.message}`);
        this.exited = { code: 127, signal: null };
        resolve(this.exited);
      });
    });
  }

  /** Drains early enough that the grace period ends before Slurm's kill at the time limit. */
  private async scheduleEnd(): Promise<ReturnType<typeof setTimeout> | null> {
    if (!this.o.slurm) return null;
    const end = await readJobEndTime(this.o.slurm);
    if (end.endTimeMs == null) {
      if (end.detail) this.log(`job end time unknown (${end.detail}); draining only on a signal`);
      return null;
    }
    const at = end.endTimeMs - this.o.graceMs - this.o.drainSettleMs - END_MARGIN_MS;
    this.log(`job ends ${new Date(end.endTimeMs).toISOString()} (${end.source}); draining from ${new Date(at).toISOString()}`);
    const t = setTimeout(() => this.drain("job end time approaching"), Math.max(0, at - Date.now()));
    (t as any).unref?.();
    return t;
  }

  private fetchService: Fetch = (path, init = {}) =>
    fetch(`http://${this.localHost()}:${this.port}${path}`, {
      ...init,
      signal: AbortSignal.timeout(init.timeoutMs ?? 5_000),
    });

  // Probe where the service listens: the advertised name may not resolve from inside the job.
  private localHost(): string {
    const h = this.o.bindHost;
    if (h === "0.0.0.0" || h === "" || h === "::") return "127.0.0.1";
    return h.includes(":") ? `[${h}]` : h;
  }

  /** true when ready; otherwise why not. */
  private async waitReady(): Promise<true | string> {
    const deadline = Date.now() + this.o.readyTimeoutMs;
    let last = "no answer yet";
    let delay = 200;
    while (Date.now() < deadline) {
      if (this.exited) return `the service exited (${this.describeExit()}) before it was ready`;
      if (this.draining) return true;
      const probe = await this.probe().catch((err) => `${(err as Error).message}`);
      if (probe === true) {
        this.log(`service ready at ${this.baseUrl} after ${Math.round((this.o.readyTimeoutMs - (deadline - Date.now())) / 1000)} s`);
        return true;
      }
      last = probe;
      await this.sleepOrExit(delay);
      delay = Math.min(2_000, delay * 2);
    }
    return `the service was not ready within ${this.o.readyTimeoutMs} ms (last probe: ${last})`;
  }

  private async probe(): Promise<true | string> {
    if (this.o.role === "retrieval") {
      const started = Date.now();
      const res = await this.fetchService("/retrieve", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ queries: [this.o.probeQuery], topk: 1, return_scores: true }),
        timeoutMs: this.o.probeTimeoutMs,
      });
      if (!res.ok) return `POST /retrieve answered ${res.status}`;
      const body = (await res.json()) as unknown;
      const list = Array.isArray(body) ? body : (body as any)?.result;
      if (!Array.isArray(list)) return "POST /retrieve answered without a list of results";
      return Date.now() - started <= this.o.probeTimeoutMs ? true : `the probe query took ${Date.now() - started} ms`;
    }
    const health = await this.fetchService("/health");
    if (!health.ok) return `GET /health answered ${health.status}`;
    const models = await this.fetchService("/v1/models");
    if (!models.ok) return `GET /v1/models answered ${models.status}`;
    const ids = (((await models.json()) as any)?.data ?? []).map((m: any) => m?.id);
    return ids.includes(this.o.name) ? true : `GET /v1/models lists ${JSON.stringify(ids)}, not '${this.o.name}'`;
  }

  private async api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.o.token) headers.authorization = `Bearer ${this.o.token}`;
    const res = await fetch(this.o.server.replace(/\/+$/, "") + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const { text, json } = await readBody(res);
    if (res.status >= 500 || (res.status >= 400 && res.status !== 404))
      throw new Error(`${method} ${path}: ${res.status} ${json?.error?.message ?? text.slice(0, 200)}`);
    return { status: res.status, json };
  }

  private async register(): Promise<void> {
    const s = this.o.slurm;
    const { status, json } = await this.api<any>("POST", "/v1/endpoints/register", {
      kind: this.o.role === "retrieval" ? "retrieval" : "model",
      name: this.o.name,
      base_url: this.baseUrl,
      role: this.o.role,
      service: this.o.service,
      node: hostname(),
      slurm_job_id: s?.jobId ?? null,
      slurm_array_job_id: s?.arrayJobId ?? null,
      slurm_array_task_id: s?.arrayTaskId ?? null,
      lease_ms: this.o.leaseMs,
    });
    if (status !== 201) throw new Error(`register answered ${status}`);
    this.endpointId = json.id;
    this.log(`registered endpoint ${json.id}: ${this.o.name} at ${this.baseUrl}, healthy (lease ${this.o.leaseMs} ms)`);
  }

  /** Heartbeats until a drain is asked for or the service dies. */
  private async serve(): Promise<number> {
    let failures = 0;
    const drainAsked = new Promise<string>((resolve) => {
      if (this.draining) resolve(this.draining);
      this.wakeDrain = resolve;
    });
    for (;;) {
      const next = await Promise.race([
        drainAsked.then((r) => ({ kind: "drain" as const, reason: r })),
        this.childExit!.then(() => ({ kind: "died" as const, reason: "" })),
        Bun.sleep(this.o.heartbeatMs).then(() => ({ kind: "beat" as const, reason: "" })),
      ]);
      if (next.kind === "drain") return await this.drainAndStop(next.reason);
      if (next.kind === "died") {
        await this.deregister();
        return await this.failure(`the service exited (${this.describeExit()}) while serving`);
      }
      try {
        const { status } = await this.api("POST", `/v1/endpoints/${this.endpointId}/heartbeat`, { lease_ms: this.o.leaseMs });
        // The row was removed (by hand, or a lost race): this service is still good, so register again.
        if (status === 404) await this.register();
        failures = 0;
      } catch (err) {
        if (failures++ % 5 === 0) this.log(`heartbeat failed (will retry): ${(err as Error).message}`);
      }
    }
  }

  private async drainAndStop(reason: string): Promise<number> {
    this.log(`draining (${reason}): no new calls; in-flight calls get up to ${this.o.graceMs} ms`);
    await this.api("POST", `/v1/endpoints/${this.endpointId}/drain`).catch((err) => this.log(`could not mark draining: ${err.message}`));
    const started = Date.now();
    const deadline = started + this.o.graceMs;
    let inflight: number | null = null;
    let unknownSaid = false;
    while (Date.now() < deadline && !this.exited) {
      inflight = await this.inFlight();
      if (inflight == null && !unknownSaid) {
        unknownSaid = true;
        this.log("calls in flight unknown (no vLLM /metrics, no /admin/stats): waiting the whole grace period");
      }
      // Runners see `draining` at their next registry refresh: until then new calls may still come.
      if (Date.now() - started >= this.o.drainSettleMs && inflight === 0) break;
      await this.sleepOrExit(250);
    }
    if (inflight) this.log(`grace period over with ${inflight} call(s) in flight; their runners retry them elsewhere`);
    await this.deregister();
    return await this.stopService(reason, 0);
  }

  /** Requests the service is working on: vLLM's /metrics, else the simulators' /admin/stats. */
  private async inFlight(): Promise<number | null> {
    try {
      const res = await this.fetchService("/metrics", { timeoutMs: 2_000 });
      if (res.ok) {
        const text = await res.text();
        const running = readGauge(text, "vllm:num_requests_running");
        if (running != null) return running + (readGauge(text, "vllm:num_requests_waiting") ?? 0);
      }
    } catch {}
    try {
      const res = await this.fetchService("/admin/stats", { timeoutMs: 2_000 });
      if (res.ok) {
        const n = ((await res.json()) as any)?.inFlight;
        if (typeof n === "number") return n;
      }
    } catch {}
    return null;
  }

  private async deregister(): Promise<void> {
    if (this.endpointId == null) return;
    try {
      await this.api("DELETE", `/v1/endpoints/${this.endpointId}`);
      this.log(`deregistered endpoint ${this.endpointId}`);
      this.endpointId = null;
    } catch (err) {
      this.log(`could not deregister endpoint ${this.endpointId} (its lease will expire): ${(err as Error).message}`);
    }
  }

  private async stopService(reason: string, code: number): Promise<number> {
    await this.killService();
    this.log(`stopped (${reason})`);
    return code;
  }

  private async killService(): Promise<void> {
    const child = this.child;
    if (!child || child.pid == null) return;
    const group = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {}
    };
    if (!this.exited) {
      group("SIGTERM");
      await Promise.race([this.childExit!, Bun.sleep(10_000)]);
    }
    // Whatever of the group outlived its leader (workers, a backgrounded helper) goes too.
    group("SIGKILL");
    await Promise.race([this.childExit!, Bun.sleep(2_000)]);
    try {
      this.watchdog?.kill("SIGKILL");
    } catch {}
  }

  private async failure(why: string): Promise<number> {
    await this.killService();
    const tail = this.tail.slice(-TAIL_LINES);
    this.log(`FAILED: ${why}`);
    if (tail.length) this.log(`last ${tail.length} line(s) of the service's output:\n${tail.map((l) => `  | ${l}`).join("\n")}`);
    return 1;
  }

  private describeExit(): string {
    const e = this.exited;
    if (!e) return "running";
    return e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`;
  }

  private async sleepOrExit(ms: number): Promise<void> {
    await Promise.race([Bun.sleep(ms), this.childExit!]);
  }
}
