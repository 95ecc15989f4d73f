// Option parsers shared by the subcommands.
import { invalid } from '../errors.js';

/** `--input-shape x=1x3x640x640` or `x:1x3x640x640` (repeatable; ',' also separates dims). The name is
 *  everything before the last '=' or ':', so names containing ':' work with '='. */
export function parseInputShape(value: string, previous: Record<string, number[]> = Object.create(null)): Record<string, number[]> {
  const m = /^(.+)[:=]([0-9]+(?:[x,][0-9]+)*)$/.exec(value.trim());
  if (!m) throw invalid('--input-shape', `expected NAME=D1xD2x... (or NAME:D1xD2x...), got '${value}'`);
  const dims = m[2].split(/[x,]/).map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d <= 0)) throw invalid('--input-shape', `dimensions must be positive integers in '${value}'`);
  const out: Record<string, number[]> = Object.create(null);
  Object.assign(out, previous);
  out[m[1]] = dims;
  return out;
}

export function parseBatch(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw invalid('--batch', `expected a positive integer, got '${value}'`);
  return n;
}
