// `baton endpoint-agent`: what a `baton launch` job script execs. Starts one service, waits
// until it answers, registers it, heartbeats, and drains it on SIGTERM/SIGUSR1 or before the
// job's end (runner/endpoint-agent.ts). Exit 0 after a drain, 1 when the service failed.
import { hostname } from "node:os";
import { AGENT_ROLES, EndpointAgent, type AgentRole } from "../../runner/endpoint-agent";
import { readSlurmContext } from "../../runner/slurm";
import { defineCommand, SERVER } from "../define-command";
import { discoverToken, serverUrl, usageError } from "./_api";

function int(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min) throw usageError(`--${name}: expected an integer >= ${min}, got '${value}'`);
  return Number(value);
}

const S = (value: string, help: string) => ({ type: "string", value, help }) as const;

export const { describe, run } = defineCommand({
  name: "endpoint-agent",
  describe: "run one service inside a Slurm job: start, wait until ready, register, heartbeat, drain (used by 'baton launch')",
  usage: "--role ROLE --name NAME --command 'CMD'",
  positionals: false,
  options: {
    role: S("R", AGENT_ROLES.join(" | ")),
    name: S("NAME", "the served model (LLMs; must be listed by /v1/models), or the\nretrieval backend name (retrieval, wiki_retrieval)"),
    command: S("CMD", "run with bash -c; {port}, {host} and {model} are filled in"),
    service: S("NAME", "the deployment's service name (shown by 'baton launch status')"),
    port: S("P", "the service's port (default: a free one)"),
    "bind-host": S("H", "what {host} becomes: the address the service listens on (default 0.0.0.0)"),
    "advertise-host": S("H", "the address runners connect to (default: this node's host name)"),
    "ready-timeout-ms": S("N", "how long the service may take to become ready (default 1800000)"),
    "probe-query": S("Q", 'retrieval readiness probe (default "test")'),
    "probe-timeout-ms": S("N", "the probe's deadline (default 10000)"),
    "lease-ms": S("N", "healthy without a heartbeat for this long (default 60000)"),
    "heartbeat-ms": S("N", "heartbeat interval (default lease / 4)"),
    "grace-ms": S("N", "in-flight calls get this long after a drain starts (default 25000)"),
    "drain-settle-ms": S("N", "runners' time to notice the drain (default 6000)"),
    server: SERVER,
  },
  async run({ values }) {
    if (!values.role || !(AGENT_ROLES as readonly string[]).includes(values.role))
      throw usageError(`--role: expected one of ${AGENT_ROLES.join(", ")}, got '${values.role ?? ""}'`);
    if (!values.name) throw usageError("--name is required (the served model, or the retrieval backend name)");
    if (!values.command) throw usageError("--command is required (e.g. 'vllm serve {model} --host {host} --port {port}')");
    const leaseMs = int("lease-ms", values["lease-ms"], 60_000, 1_000);
    const agent = new EndpointAgent({
      server: serverUrl(values.server),
      token: discoverToken(),
      role: values.role as AgentRole,
      name: values.name,
      service: values.service ?? null,
      command: values.command,
      bindHost: values["bind-host"] ?? "0.0.0.0",
      advertiseHost: values["advertise-host"] ?? hostname(),
      port: values.port === undefined ? null : int("port", values.port, 0, 1),
      readyTimeoutMs: int("ready-timeout-ms", values["ready-timeout-ms"], 1_800_000, 1),
      probeQuery: values["probe-query"] ?? "test",
      probeTimeoutMs: int("probe-timeout-ms", values["probe-timeout-ms"], 10_000, 1),
      leaseMs,
      heartbeatMs: int("heartbeat-ms", values["heartbeat-ms"], Math.max(250, Math.floor(leaseMs / 4)), 50),
      graceMs: int("grace-ms", values["grace-ms"], 25_000),
      drainSettleMs: int("drain-settle-ms", values["drain-settle-ms"], 6_000),
      slurm: readSlurmContext(),
      log: (l) => console.error(l),
    });
    for (const sig of ["SIGTERM", "SIGINT", "SIGUSR1"] as const) process.on(sig, () => agent.drain(sig));
    return await agent.run();
  },
});
