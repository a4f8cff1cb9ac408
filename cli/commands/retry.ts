// `baton retry RUN --failed`: the spelling DESIGN.md uses; same as requeue.
import { requeueCommand } from "./requeue";

export const describe = "alias of requeue: baton retry RUN --failed";

export const run = (argv: string[]) => requeueCommand(argv, "retry");
