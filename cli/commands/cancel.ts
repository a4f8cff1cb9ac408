import { defineCommand, JSON_OUTPUT, SERVER } from "../define-command";
import { createApi, encodeRef, oneRun } from "./_api";

export const { describe, run } = defineCommand({
  name: "cancel",
  describe: "cancel a run: its queued and running tasks become canceled",
  usage: "RUN",
  intro: "RUN is the run id or its name (when unique).",
  options: { server: SERVER, json: JSON_OUTPUT },
  notes: `Runners holding its tasks see their leases lost at the next heartbeat and stop.
Undo with: bun run baton requeue RUN --canceled`,
  async run({ values, positionals }) {
    const ref = oneRun(positionals);
    const res = await createApi({ server: values.server }).call<{ id: number; canceled: number }>("POST", `/v1/runs/${encodeRef(ref)}/cancel`);
    console.log(values.json ? JSON.stringify(res, null, 2) : `run ${res.id}: ${res.canceled} tasks canceled`);
    return 0;
  },
});
