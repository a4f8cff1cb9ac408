// `baton requeue RUN [--failed] [--canceled] [--error-class C]`: put finished-but-unsuccessful
// tasks back in the queue with a fresh attempt budget. Succeeded tasks are never re-run.
import { defineCommand, JSON_OUTPUT, SERVER } from "../define-command";
import { createApi, encodeRef, oneRun } from "./_api";

export function defineRequeue(name: string, describe: string) {
  return defineCommand({
    name,
    describe,
    usage: "RUN",
    intro: "RUN is the run id or its name (when unique).",
    options: {
      failed: { type: "boolean", default: false, help: "requeue failed tasks (the default when neither flag is given)" },
      canceled: { type: "boolean", default: false, help: "requeue canceled tasks (and un-cancel the run)" },
      "error-class": { type: "string", value: "CLASS", help: "only tasks that failed with this class (e.g. lease_expired, endpoint_unreachable)" },
      server: SERVER,
      json: JSON_OUTPUT,
    },
    async run({ values, positionals }) {
      const ref = oneRun(positionals);
      const statuses: ("failed" | "canceled")[] = [];
      if (values.failed) statuses.push("failed");
      if (values.canceled) statuses.push("canceled");
      if (statuses.length === 0) statuses.push("failed");
      const res = await createApi({ server: values.server }).call<{ id: number; requeued: number }>("POST", `/v1/runs/${encodeRef(ref)}/requeue`, {
        json: { statuses, ...(values["error-class"] ? { error_class: values["error-class"] } : {}) },
      });
      console.log(values.json ? JSON.stringify(res, null, 2) : `run ${res.id}: ${res.requeued} tasks requeued (${statuses.join(", ")})`);
      return 0;
    },
  });
}

export const { describe, run } = defineRequeue("requeue", "put a run's failed and/or canceled tasks back in the queue");
