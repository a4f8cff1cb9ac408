// `baton retry RUN --failed`: the spelling DESIGN.md uses; same as requeue.
import { defineRequeue } from "./requeue";

export const { describe, run } = defineRequeue("retry", "alias of requeue: baton retry RUN --failed");
