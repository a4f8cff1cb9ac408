// `baton run set RUN --priority P --max-concurrency N`: change a run's claim controls, also
// while it runs (the next claim of any runner honours them). Sub-commands keep room for more
// `baton run ...` verbs without a new top-level command each.
import { defineCommand, JSON_OUTPUT, SERVER } from "../define-command";
import { createApi, encodeRef, usageError, printJson } from "./_api";

export const { describe, run } = defineCommand({
  name: "run",
  describe: "change a run while it runs: baton run set RUN --priority P --max-concurrency N|none",
  usage: "set RUN",
  options: {
    priority: { type: "string", value: "P", help: "higher is claimed first (default 0); FIFO within a priority" },
    "max-concurrency": { type: "string", value: "N|none", help: "at most N of the run's tasks running at once, across all runners\n('none' removes the limit)" },
    json: { ...JSON_OUTPUT, help: "print the run's controls as JSON" },
    server: SERVER,
  },
  async run({ values, positionals }) {
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
    if (values.json) printJson(res);
    else console.log(`run ${res.id}: priority ${res.priority}, max concurrency ${res.max_concurrency ?? "none"}`);
    return 0;
  },
});
