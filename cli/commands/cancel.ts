import { parseArgs } from "node:util";
import { createApi, encodeRef, oneRun, runCli, SERVER_OPTION } from "./_api";

export const describe = "cancel a run: its queued and running tasks become canceled";

const USAGE = `Usage: bun run baton cancel RUN [--server URL]

RUN is the run id or its name (when unique).

  ${SERVER_OPTION}

Runners holding its tasks see their leases lost at the next heartbeat and stop.
Undo with: bun run baton requeue RUN --canceled`;

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { server: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const ref = oneRun(positionals);
    const res = await createApi({ server: values.server }).call<{ id: number; canceled: number }>("POST", `/v1/runs/${encodeRef(ref)}/cancel`);
    console.log(`run ${res.id}: ${res.canceled} tasks canceled`);
    return 0;
  }, "cancel");
}
