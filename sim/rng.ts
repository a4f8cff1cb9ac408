// Seeded randomness. Every choice the simulators make comes from a PRNG seeded by the
// replica's seed plus a hash of what the choice is about (the conversation, the question,
// the request number), so the same inputs always give the same outputs.

/** FNV-1a over UTF-16 code units, mixed with a seed; 32-bit unsigned. */
export function hashString(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Final avalanche so nearby seeds give unrelated streams.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32: small, fast, good enough for simulation choices. Returns floats in [0, 1). */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A PRNG keyed by a seed and any number of labels (strings or numbers). */
export function rngFor(seed: number, ...parts: (string | number)[]): () => number {
  let h = seed >>> 0;
  for (const p of parts) h = hashString(String(p), h);
  return createRng(h);
}

export function pickOne<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)] as T;
}

/** Multiplies a latency by a seeded factor in [1 - jitter, 1 + jitter]. */
export function jittered(ms: number, jitter: number, rng: () => number): number {
  if (ms <= 0) return 0;
  const j = Math.min(Math.max(jitter, 0), 1);
  return Math.max(0, ms * (1 + j * (2 * rng() - 1)));
}
