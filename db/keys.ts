// The API speaks snake_case (as the SQL does); the code speaks camelCase. These rename the
// keys of one object at the boundary. Shallow on purpose: values such as a task's input or a
// row's detail are data and stay exactly as sent.
const toSnake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const toCamel = (k: string) => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

export function snakeKeys(o: object): Record<string, any> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [toSnake(k), v]));
}

export function camelKeys<T = Record<string, any>>(o: object): T {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [toCamel(k), v])) as T;
}

/**
 * snake_case keys all the way down, for the report family (nested tables of camelCase rows).
 * Under a key named in `dataKeys` the object's own keys are data (a call's components by
 * name) and stay as they are; their values are still converted.
 */
export function snakeKeysDeep(value: unknown, dataKeys: ReadonlySet<string> = REPORT_DATA_KEYS): any {
  if (Array.isArray(value)) return value.map((x) => snakeKeysDeep(x, dataKeys));
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      toSnake(k),
      dataKeys.has(k) && v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).map(([dk, dv]) => [dk, snakeKeysDeep(dv, dataKeys)]))
        : snakeKeysDeep(v, dataKeys),
    ]),
  );
}

/** The inverse of snakeKeysDeep, for code that reads the API's report into db/analysis types. */
export function camelKeysDeep(value: unknown, dataKeys: ReadonlySet<string> = REPORT_DATA_KEYS): any {
  if (Array.isArray(value)) return value.map((x) => camelKeysDeep(x, dataKeys));
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      toCamel(k),
      dataKeys.has(k) && v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).map(([dk, dv]) => [dk, camelKeysDeep(dv, dataKeys)]))
        : camelKeysDeep(v, dataKeys),
    ]),
  );
}

// SlowCall.components: { [component name]: ms }
const REPORT_DATA_KEYS: ReadonlySet<string> = new Set(["components"]);

/** One key in snake_case (`maxTokens` → `max_tokens`); a snake_case key is returned as is. */
export function snakeCaseKey(k: string): string {
  return toSnake(k);
}

/** One key in camelCase (`max_tokens` → `maxTokens`); a camelCase key is returned as is. */
export function camelCaseKey(k: string): string {
  return toCamel(k);
}
