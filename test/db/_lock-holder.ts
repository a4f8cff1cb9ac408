// Another process that holds the database's write lock (as a sqlite3 shell with BEGIN
// EXCLUSIVE, a VACUUM or a backup would) for argv[3] ms, then commits. Prints "locked" once
// it holds the lock and "released" after.
import { Database } from "bun:sqlite";

const [path, ms] = [process.argv[2], Number(process.argv[3])];
const db = new Database(path);
db.exec("PRAGMA busy_timeout = 10000");
db.exec("BEGIN EXCLUSIVE");
db.exec("CREATE TABLE IF NOT EXISTS lock_holder_marks (at INTEGER)");
db.exec(`INSERT INTO lock_holder_marks VALUES (${Date.now()})`);
console.log("locked");
await Bun.sleep(ms);
db.exec("COMMIT");
db.close();
console.log("released");
