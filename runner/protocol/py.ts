// Python string semantics the reference relies on, so a cut or a test lands where it lands
// in the reference: lengths and slices count code points (not UTF-16 units), strip() strips
// Python's whitespace set, and `a.split(x)[-1].split(y)[0]` is the reference's tag extraction.

// str.isspace() in Python (ASCII controls 0x1c-0x1f count; U+FEFF does not).
const PY_SPACE = "[ \\t\\n\\r\\v\\f\\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const LEADING = new RegExp(`^${PY_SPACE}+`);
const TRAILING = new RegExp(`${PY_SPACE}+$`);

export function pyStrip(s: string): string {
  return s.replace(LEADING, "").replace(TRAILING, "");
}

/** len(s) */
export function pyLen(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** s[:n] */
export function pySlice(s: string, n: number): string {
  if (s.length <= n) return s;
  let points = 0;
  let i = 0;
  while (i < s.length && points < n) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff;
    i += pair ? 2 : 1;
    points++;
  }
  return s.slice(0, i);
}

/** text.split(open)[-1].split(close)[0]: the text after the last `open`, up to the next `close`. */
export function between(text: string, open: string, close: string): string {
  const at = text.lastIndexOf(open);
  const rest = at < 0 ? text : text.slice(at + open.length);
  const end = rest.indexOf(close);
  return end < 0 ? rest : rest.slice(0, end);
}

/** Fills {name} placeholders in one pass and nothing else: no trimming, unknown names kept. */
export function fill(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{([a-z_]+)\}/g, (whole, key: string) => (key in values ? String(values[key]) : whole));
}
