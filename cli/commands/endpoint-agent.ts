// `baton endpoint-agent`: what a `baton launch` job script execs. Starts one service, waits
// until it answers, registers it, heartbeats, and drains it on SIGTERM/SIGUSR1 or before the
// job's end (runner/endpoint-agent.ts). Exit 0 after a drain, 1 when the service failed.
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { AGENT_ROLES, EndpointAgent, type AgentRole } from "../../runner/endpoint-agent";
import { readSlurmContext } from "../../runner/slurm";
import { discoverToken, runCli, SERVER_OPTION, serverUrl, usageError } from "./_api";

export const describe = "run one service inside a Slurm job: start, wait until ready, register, heartbeat, drain (used by 'baton launch')";

const USAGE = `Usage: bun run baton endpoint-agent --role ROLE --name NAME --command 'CMD' [options]

  --role R             ${AGENT_ROLES.join(" | ")}
  --name NAME          the served model (LLMs; must be listed by /v1/models), or the
                       retrieval backend name (retrieval, wiki_retrieval)
  --command CMD        run with bash -c; {port}, {host} and {model} are filled in
  --service NAME       the deployment's service name (shown by 'baton launch status')
  --port P             the service's port (default: a free one)
  --bind-host H        what {host} becomes: the address the service listens on (default 0.0.0.0)
  --advertise-host H   the address runners connect to (default: this node's host name)
  --ready-timeout-ms N how long the service may take to become ready (default 1800000)
  --probe-query Q      retrieval readiness probe (default "test")
  --probe-timeout-ms N the probe's deadline (default 10000)
  --lease-ms N         healthy without a heartbeat for this long (default 60000)
  --heartbeat-ms N     (default lease / 4)
  --grace-ms N         in-flight calls get this long after a drain starts (default 25000)
  --drain-settle-ms N  runners' time to notice the drain (default 6000)
  ${SERVER_OPTION}`;

function int(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min) throw usageError(`--${name}: expected an integer >= ${min}, got '${value}'`);
  return Number(value);
}

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { values } = parseArgs({
      args: argv,
      options: {
        role: { type: "string" },
        name: { type: "string" },
        command: { type: "string" },
        service: { type: "string" },
        port: { type: "string" },
        "bind-host": { type: "string" },
        "advertise-host": { type: "string" },
        "ready-timeout-ms": { type: "string" },
        "probe-query": { type: "string" },
        "probe-timeout-ms": { type: "string" },
        "lease-ms": { type: "string" },
        "heartbeat-ms": { type: "string" },
        "grace-ms": { type: "string" },
        "drain-settle-ms": { type: "string" },
        server: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
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
  }, "endpoint-agent");
}
