// The baseline for bench/claim.ts: the least a SQLite job queue can do per task on this
// machine — bun:sqlite, prepared statements, a minimal table (no history, no counters, no
// fencing beyond the lease column), WAL with synchronous=NORMAL, as plainjob-style queues do.
//   bun bench/claim-bare-worker.ts PATH --seed N              # create the table with N jobs
//   bun bench/claim-bare-worker.ts PATH RUNNER_ID BATCH MODE  # claim until none is left
// Prints "summary <completed> <ms> <end epoch ms>" like bench/claim-worker.ts.
import { Database } from "bun:sqlite";
import { existsSync, writeFileSync } from "node:fs";

const [path, a, b, mode = "single"] = process.argv.slice(2);
const db = new Database(path, { create: true, strict: true });
// busy_timeout first: four workers switching the file to WAL at once otherwise meet
// "database is locked" and one dies before it says it is ready (the bench then waited forever)
db.exec("PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
if (a === "--seed") {
  db.exec("CREATE TABLE jobs (id INTEGER PRIMARY KEY, status TEXT NOT NULL, lease TEXT, payload TEXT NOT NULL, result TEXT)");
  db.exec("CREATE INDEX jobs_queued ON jobs (id) WHERE status = 'queued'");
  const ins = db.prepare("INSERT INTO jobs (status, payload) VALUES ('queued', ?)");
  db.transaction((n: number) => {
    for (let i = 0; i < n; i++) ins.run(JSON.stringify({ id: i, question: `question ${i}` }));
  })(Number(b));
  db.close();
  process.exit(0);
}
const batch = Number(b ?? 32);
const claim = db.prepare(
  "UPDATE jobs SET status = 'running', lease = hex(randomblob(16)) WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT ?) RETURNING id, lease, payload",
);
const complete = db.prepare("UPDATE jobs SET status = 'done', result = ?, lease = NULL WHERE id = ? AND lease = ? AND status = 'running'");
const completeAll = db.transaction((rows: any[]) => rows.reduce((n, r) => n + complete.run(JSON.stringify({ prediction: "p", correct: true }), r.id, r.lease).changes, 0));
const go = process.env.BENCH_GO_FILE;
if (go) {
  writeFileSync(`${go}.ready.${a}`, "");
  while (!existsSync(go)) await Bun.sleep(2);
}
let completed = 0;
let first = 0;
let last = 0;
for (;;) {
  const rows = claim.all(batch) as any[];
  if (rows.length === 0) break;
  if (!first) first = performance.now();
  for (const r of rows) JSON.parse(r.payload);
  if (mode === "batch") completed += completeAll(rows);
  else for (const r of rows) completed += complete.run(JSON.stringify({ prediction: "p", correct: true }), r.id, r.lease).changes;
  last = performance.now();
}
console.log(`summary ${completed} ${Math.round(last - first)} ${Date.now()}`);
db.close();
