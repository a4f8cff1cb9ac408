// `baton requeue RUN [--failed] [--canceled] [--error-class C]`: put finished-but-unsuccessful
// tasks back in the queue with a fresh attempt budget. Succeeded tasks are never re-run.
import { parseArgs } from "node:util";
import { createApi, encodeRef, oneRun, runCli, SERVER_OPTION } from "./_api";

export const describe = "put a run's failed and/or canceled tasks back in the queue";

export function usage(name: string): string {
  return `Usage: bun run baton ${name} RUN [--failed] [--canceled] [--error-class CLASS] [--server URL]

  --failed            requeue failed tasks (the default when neither flag is given)
  --canceled          requeue canceled tasks (and un-cancel the run)
  --error-class C     only tasks that failed with this class (e.g. lease_expired, endpoint_unreachable)
  ${SERVER_OPTION}`;
}

export async function requeueCommand(argv: string[], name: string): Promise<number> {
  return runCli(async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        failed: { type: "boolean", default: false },
        canceled: { type: "boolean", default: false },
        "error-class": { type: "string" },
        server: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(usage(name));
      return 0;
    }
    const ref = oneRun(positionals);
    const statuses: ("failed" | "canceled")[] = [];
    if (values.failed) statuses.push("failed");
    if (values.canceled) statuses.push("canceled");
    if (statuses.length === 0) statuses.push("failed");
    const res = await createApi({ server: values.server }).call<{ id: number; requeued: number }>(
      "POST",
      `/v1/runs/${encodeRef(ref)}/requeue`,
      { json: { statuses, ...(values["error-class"] ? { error_class: values["error-class"] } : {}) } },
    );
    console.log(`run ${res.id}: ${res.requeued} tasks requeued (${statuses.join(", ")})`);
    return 0;
  }, name);
}

export const run = (argv: string[]) => requeueCommand(argv, "requeue");
