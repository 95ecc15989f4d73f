// Field-by-field comparison of JSON values, numbers to 1e-9 relative: the FusePlanner reference's estimates against
// faithful mode's. JSON numbers compare as numbers: Python's 1622016.0 and 803104 have no int/float distinction in JS.
const REL_TOL = 1e-9;

/** Differences between `actual` and `expected` (JSON values), as "path: what" lines. */
export function jsonDiff(actual: unknown, expected: unknown, path = '$'): string[] {
  if (typeof expected === 'number') {
    if (typeof actual !== 'number') return [`${path}: expected number ${expected}, got ${JSON.stringify(actual)}`];
    const ok = actual === expected || Math.abs(actual - expected) <= REL_TOL * Math.abs(expected);
    return ok ? [] : [`${path}: expected ${expected}, got ${actual}`];
  }
  if (expected === null || typeof expected !== 'object') {
    return actual === expected ? [] : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
  }
  if (typeof actual !== 'object' || actual === null || Array.isArray(actual) !== Array.isArray(expected)) {
    return [`${path}: expected ${Array.isArray(expected) ? 'array' : 'object'}, got ${JSON.stringify(actual)}`];
  }
  const e = expected as Record<string, unknown>;
  const a = actual as Record<string, unknown>;
  const out: string[] = [];
  for (const k of Object.keys(e)) {
    if (!(k in a)) out.push(`${path}.${k}: missing`);
    else out.push(...jsonDiff(a[k], e[k], `${path}.${k}`));
  }
  for (const k of Object.keys(a)) if (!(k in e)) out.push(`${path}.${k}: unexpected`);
  return out;
}

