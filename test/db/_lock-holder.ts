// Another process that holds the database's write lock (as a sqlite3 shell with BEGIN
// EXCLUSIVE, a VACUUM or a backup would) for argv[3] ms, then commits. Prints "locked" once
// it holds the lock and "released" after. With argv[4] = "--on-stdin" it opens the file,
// prints "ready" and takes the lock only when a line arrives on stdin, so a test can lock
// at an exact moment without paying for the process start then.
import { Database } from "bun:sqlite";

const [path, ms, mode] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const db = new Database(path);
db.exec("PRAGMA busy_timeout = 10000");
if (mode === "--on-stdin") {
  console.log("ready");
  for await (const _ of console) break;
}
db.exec("BEGIN EXCLUSIVE");
db.exec("CREATE TABLE IF NOT EXISTS lock_holder_marks (at INTEGER)");
db.exec(`INSERT INTO lock_holder_marks VALUES (${Date.now()})`);
console.log("locked");
await Bun.sleep(ms);
db.exec("COMMIT");
db.close();
console.log("released");
