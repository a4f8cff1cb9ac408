// `baton run set RUN --priority P --max-concurrency N`: change a run's claim controls, also
// while it runs (the next claim of any runner honours them). Sub-commands keep room for more
// `baton run ...` verbs without a new top-level command each.
import { parseArgs } from "node:util";
import { createApi, encodeRef, runCli, SERVER_OPTION, usageError } from "./_api";

export const describe = "change a run while it runs: baton run set RUN --priority P --max-concurrency N|none";

const USAGE = `Usage: bun run baton run set RUN [--priority P] [--max-concurrency N|none] [--json] [--server URL]

  --priority P             higher is claimed first (default 0); FIFO within a priority
  --max-concurrency N      at most N of the run's tasks running at once, across all runners
                           ('none' removes the limit)
  --json                   print the run's controls as JSON
  ${SERVER_OPTION}`;

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        priority: { type: "string" },
        "max-concurrency": { type: "string" },
        json: { type: "boolean", default: false },
        server: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const [verb, ref, ...rest] = positionals;
    if (verb !== "set") throw usageError(`unknown sub-command ${JSON.stringify(verb ?? "")}; expected 'set'`);
    if (!ref || rest.length) throw usageError("expected: run set RUN");
    const body: { priority?: number; max_concurrency?: number | null } = {};
    if (values.priority != null) {
      if (!/^-?\d+$/.test(values.priority)) throw usageError("--priority: expected an integer");
      body.priority = Number(values.priority);
    }
    const mc = values["max-concurrency"];
    if (mc != null) {
      if (mc !== "none" && !/^\d+$/.test(mc)) throw usageError("--max-concurrency: expected a positive integer or 'none'");
      body.max_concurrency = mc === "none" ? null : Number(mc);
    }
    if (Object.keys(body).length === 0) throw usageError("nothing to set: give --priority and/or --max-concurrency");
    const api = createApi({ server: values.server });
    const res = await api.call<{ id: number; priority: number; max_concurrency: number | null }>("POST", `/v1/runs/${encodeRef(ref)}/controls`, { json: body });
    console.log(values.json ? JSON.stringify(res) : `run ${res.id}: priority ${res.priority}, max concurrency ${res.max_concurrency ?? "none"}`);
    return 0;
  }, "run");
}
