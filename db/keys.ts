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
