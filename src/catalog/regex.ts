/** Small helpers over catalog regular expressions. */

/** Named capture groups a regex source declares, e.g. `(?<pid>\d+)` → `pid`. */
export function namedGroups(source: string): string[] {
  return [...source.matchAll(/\(\?<([a-zA-Z][a-zA-Z0-9]*)>/g)].map((m) => m[1]!);
}

const cache = new Map<string, RegExp>();

/** Compiles (once) a catalog regex. */
export function compiled(source: string): RegExp {
  let re = cache.get(source);
  if (!re) {
    re = new RegExp(source);
    cache.set(source, re);
  }
  return re;
}
