// Reads a plan saved as JSON (`fcm-opt plan --plan FILE`, planToJson) back, for a command to run it instead of planning
// again: the tuned plan of one `plan --tune`, kernel choices included, timed by `bench --load-plan` as often as wanted.
// Checked for the fields a session reads (modules with kinds, layers, nodes and tiles; kernel choices); whether the
// plan fits the model is applyPlan's check (src/rewrite/apply-plan.ts), which names the module.
import { defaultMaxMemory } from '../../converters/options.js';
import { readInputTextSync } from '../input-file.js';
import { invalid } from '../errors.js';
import type { ModuleKind, Plan } from './plan.js';

const kinds: ReadonlySet<ModuleKind> = new Set(['pwdw', 'dwpw', 'pwpw', 'dw', 'pw', 's', 'fc']);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads `path` (a regular file within `maxMemory` bytes) and checks it (validatePlan). */
export function loadPlan(path: string, maxMemory = defaultMaxMemory): Plan {
  const text = readInputTextSync(path, { maxBytes: maxMemory });
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw invalid(path, `not valid JSON: ${(e as Error).message}`);
  }
  return validatePlan(data, path);
}

/** `data` as a Plan, or an FcmError (invalid) naming `source` and the first field that is wrong. */
export function validatePlan(data: unknown, source: string): Plan {
  if (!isObject(data) || !Array.isArray(data.modules)) throw invalid(source, 'is not a plan (an object with a "modules" array, as `fcm-opt plan --plan FILE` writes)');
  data.modules.forEach((m, i) => {
    const where = `${source}: module ${i}`;
    if (!isObject(m)) throw invalid(where, 'is not an object');
    if (!kinds.has(m.kind as ModuleKind)) throw invalid(where, `kind must be one of ${[...kinds].join(', ')}, got ${JSON.stringify(m.kind)}`);
    if (!Array.isArray(m.layers) || !m.layers.every((l) => Number.isInteger(l) && l >= 0)) throw invalid(where, 'layers must be an array of layer ids');
    if (m.nodes !== undefined && (!Array.isArray(m.nodes) || !m.nodes.every((n) => typeof n === 'string'))) throw invalid(where, 'nodes must be an array of node names');
    if (!isObject(m.tiles)) throw invalid(where, 'tiles must be an object');
    for (const [k, v] of Object.entries(m.tiles)) if (v !== undefined && typeof v !== 'number') throw invalid(where, `tile '${k}' must be a number`);
  });
  if (data.kernels !== undefined) {
    if (!isObject(data.kernels)) throw invalid(source, '"kernels" must be an object of node name -> { variant }');
    for (const [node, k] of Object.entries(data.kernels)) {
      if (!isObject(k) || typeof k.variant !== 'string') throw invalid(`${source}: kernel choice of '${node}'`, 'must be { "variant": string }');
    }
  }
  return data as unknown as Plan;
}
