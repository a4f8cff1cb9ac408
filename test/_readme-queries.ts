// The worked queries of the README's "Asking the database", read from the README itself so
// the doc and the tests that run its queries cannot drift. Each query stands under a
// "### N. question" heading with an `<!-- id: name -->` marker.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

export type ReadmeQuery = { question: string; sql: string };

export function readReadmeQueries(): Map<string, ReadmeQuery> {
  const readme = readFileSync(resolve(import.meta.dir, "../README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Asking the database"), readme.indexOf("## Benchmarks"));
  const queries = new Map<string, ReadmeQuery>();
  for (const m of section.matchAll(/### \d+\. (.+)\n<!-- id: ([\w-]+) -->\n```sql\n([\s\S]*?)```/g))
    queries.set(m[2], { question: m[1], sql: m[3] });
  return queries;
}
