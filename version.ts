// Baton's version has one source: package.json. The runner and the server exchange it
// (runner/queue-http.ts sends it, functions/queue.ts checks it); a pair that may not speak the
// same protocol is refused with a message saying which side to upgrade.
import pkg from "./package.json";

export const VERSION: string = pkg.version;
// package.json has no licence field yet: npm's word for "none granted" until one is chosen,
// as an SPDX reference to a licence not on the SPDX list
const licence = (pkg as { license?: string }).license;
export const LICENSE = licence ? { name: licence, identifier: licence } : { name: "UNLICENSED", identifier: "LicenseRef-UNLICENSED" };

type Semver = { major: number; minor: number; patch: number };

function parseVersion(v: string): Semver | null {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(v.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : null;
}

/**
 * Null when a runner of version `runner` may work with a server of version `server`: the same
 * major, and while below 1.0 also the same minor (0.x minors may change the protocol).
 * Otherwise the reason, naming the side that is behind.
 */
export function incompatibility({ runner, server }: { runner: string; server: string }): string | null {
  const r = parseVersion(runner);
  const s = parseVersion(server);
  if (!r || !s) return `cannot compare runner version ${JSON.stringify(runner)} with server version ${JSON.stringify(server)} (expected MAJOR.MINOR.PATCH)`;
  const same = r.major === s.major && (r.major >= 1 || r.minor === s.minor);
  if (same) return null;
  const runnerBehind = r.major < s.major || (r.major === s.major && r.minor < s.minor);
  return runnerBehind
    ? `runner ${runner} is older than server ${server}: upgrade the runner (the Baton checkout it runs from) to ${s.major}.${s.major >= 1 ? "x" : `${s.minor}.x`}`
    : `server ${server} is older than runner ${runner}: upgrade the server (baton serve) to ${r.major}.${r.major >= 1 ? "x" : `${r.minor}.x`}`;
}
