// Which runner/server pairs may work together, and what the refusal says.
import { expect, test } from "bun:test";
import pkg from "../package.json";
import { incompatibility, VERSION } from "../version";

test("the version comes from package.json", () => {
  expect(VERSION).toBe(pkg.version);
});

test("the same major works together from 1.0 on; below 1.0 the minor must match too", () => {
  expect(incompatibility({ runner: "1.4.2", server: "1.0.0" })).toBeNull();
  expect(incompatibility({ runner: "0.1.9", server: "0.1.0" })).toBeNull();
  expect(incompatibility({ runner: "0.1.0", server: "0.2.0" })).toBe("runner 0.1.0 is older than server 0.2.0: upgrade the runner (the Baton checkout it runs from) to 0.2.x");
  expect(incompatibility({ runner: "2.0.0", server: "1.9.0" })).toBe("server 1.9.0 is older than runner 2.0.0: upgrade the server (baton serve) to 2.x");
  expect(incompatibility({ runner: "1.0.0", server: "0.9.0" })).toMatch(/upgrade the server/);
});

test("a version that is not MAJOR.MINOR.PATCH is refused with both versions named", () => {
  expect(incompatibility({ runner: "dev", server: "0.1.0" })).toMatch(/"dev".*"0\.1\.0"/);
});
