import { parseArgs } from "node:util";
import { CliError, createApi, encodeRef, runCli } from "./_api";

export const describe = "cancel a run: its queued and running tasks become canceled";

const USAGE = `Usage: bun run baton cancel RUN [--server URL]

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
    if (!positionals[0]) throw new CliError(`missing RUN\n${USAGE}`, 2);
    const res = await createApi({ server: values.server }).call<{ id: number; canceled: number }>(
      "POST",
      `/v1/runs/${encodeRef(positionals[0])}/cancel`,
    );
    console.log(`run ${res.id}: ${res.canceled} tasks canceled`);
    return 0;
  }, "cancel");
}
