// Reads and validates a FusePlanner layer DAG (`model_dag.json`, see src/planner/dag.ts). The planners
// trust what passes here: ids equal positions, edges are consistent both ways, the graph is acyclic and
// conv layers carry the shapes their cost models read. Errors name the file and the layer.
import { readFileSync } from 'node:fs';
import { invalid } from '../errors.js';
import type { Dag, DagLayer } from './dag.js';

/** Weight-shape rank per conv type: s [F, C, K, K], dw [C, K, K], pw [F, C], fc [F, C]. */
const weightsRank: Record<string, number> = { s: 4, dw: 3, pw: 2, fc: 2 };
const convTypes = new Set(['s', 'dw', 'pw']);

/** Reads `path` and validates it (see validateDag). */
export function loadDag(path: string): Dag {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw invalid(path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw invalid(path, `not valid JSON: ${(e as Error).message}`);
  }
  return validateDag(data, path);
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isIntArray = (v: unknown): v is number[] => Array.isArray(v) && v.every(isInt);

/** Checks a parsed DAG; `file` names it in messages. Returns the same array, typed. */
export function validateDag(data: unknown, file: string): Dag {
  if (!Array.isArray(data)) throw invalid(file, 'a layer DAG must be a JSON array of layers');
  if (data.length === 0) throw invalid(file, 'the layer DAG has no layers');
  const n = data.length;
  data.forEach((raw, pos) => {
    const at = `${file}: layer ${pos}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid(at, 'is not a JSON object');
    const l = raw as Record<string, unknown>;
    if (!('id' in l)) throw invalid(at, "missing field 'id'");
    if (!isInt(l.id)) throw invalid(at, "field 'id' must be an integer");
    if (l.id !== pos) throw invalid(at, `has id ${l.id}; ids must equal positions in the list (0, 1, 2, ...)`);
    const where = `${file}: layer ${pos}${typeof l.name === 'string' ? ` ('${l.name}')` : ''}`;
    for (const f of ['name', 'parents', 'children']) if (!(f in l)) throw invalid(where, `missing field '${f}'`);
    if (typeof l.name !== 'string') throw invalid(where, "field 'name' must be a string");
    if (l.activation !== undefined && typeof l.activation !== 'string') throw invalid(where, "field 'activation' must be a string");
    for (const f of ['parents', 'children'] as const) {
      const ids = l[f];
      if (!isIntArray(ids)) throw invalid(where, `field '${f}' must be an array of layer ids`);
      for (const id of ids) {
        if (id < 0 || id >= n) throw invalid(where, `${f} lists layer ${id}, which does not exist (layers 0..${n - 1})`);
        if (id === pos) throw invalid(where, `lists itself in '${f}' (a cycle)`);
      }
      if (new Set(ids).size !== ids.length) throw invalid(where, `field '${f}' repeats a layer id`);
    }
    for (const f of ['ifms_shape', 'ofms_shape', 'weights_shape'] as const) {
      if (l[f] !== undefined && !isIntArray(l[f])) throw invalid(where, `field '${f}' must be an array of integers`);
    }
    if (l.type !== undefined && typeof l.type !== 'string') throw invalid(where, "field 'type' must be a string");
    if (typeof l.type === 'string' && Object.hasOwn(weightsRank, l.type)) checkConv(l, where);
  });
  const dag = data as Dag;
  // Edges must agree both ways.
  for (const l of dag) {
    for (const c of l.children) {
      if (!dag[c].parents.includes(l.id)) throw invalid(`${file}: layer ${l.id} ('${l.name}')`, `lists child ${c}, but layer ${c} does not list it as a parent`);
    }
    for (const p of l.parents) {
      if (!dag[p].children.includes(l.id)) throw invalid(`${file}: layer ${l.id} ('${l.name}')`, `lists parent ${p}, but layer ${p} does not list it as a child`);
    }
  }
  checkAcyclic(dag, file);
  return dag;
}

function checkConv(l: Record<string, unknown>, where: string): void {
  const type = l.type as string;
  for (const f of ['weights_shape', ...(convTypes.has(type) ? ['ifms_shape', 'ofms_shape', 'strides'] : [])]) {
    if (l[f] === undefined) throw invalid(where, `'${type}' layer is missing field '${f}'`);
  }
  const ws = l.weights_shape as number[];
  if (ws.length !== weightsRank[type]) throw invalid(where, `'${type}' weights_shape must have ${weightsRank[type]} dimensions, got [${ws.join(', ')}]`);
  if (ws.some((d) => d <= 0)) throw invalid(where, `weights_shape [${ws.join(', ')}] has a non-positive dimension`);
  if (!convTypes.has(type)) return;
  for (const f of ['ifms_shape', 'ofms_shape'] as const) {
    const s = l[f] as number[];
    if (s.length !== 3 || s.some((d) => d <= 0)) throw invalid(where, `'${f}' of a conv layer must be [C, H, W] with positive sizes, got [${s.join(', ')}]`);
  }
  if (!isInt(l.strides) || l.strides <= 0) throw invalid(where, "field 'strides' must be a positive integer");
  const [ci] = l.ifms_shape as number[];
  const [co] = l.ofms_shape as number[];
  // Channel counts must match the weights, or the cost models compute nonsense.
  if (type === 'dw' && (ws[0] !== ci || co !== ci)) throw invalid(where, `depthwise weights [${ws.join(', ')}] do not match ${ci} input / ${co} output channels`);
  if (type === 'pw' && (ws[1] !== ci || ws[0] !== co)) throw invalid(where, `weights [${ws.join(', ')}] do not match ${ci} input / ${co} output channels`);
  // A grouped standard conv has weights [F, C/group, K, K] (converters/dag.ts); the seed's have group 1.
  if (type === 's' && (ci % ws[1] !== 0 || ws[0] !== co)) throw invalid(where, `weights [${ws.join(', ')}] do not match ${ci} input / ${co} output channels`);
}

/** Kahn's algorithm; on a cycle, names a layer on it. */
function checkAcyclic(dag: Dag, file: string): void {
  const indegree = dag.map((l) => l.parents.length);
  const queue = dag.filter((l) => l.parents.length === 0).map((l) => l.id);
  let visited = 0;
  while (queue.length > 0) {
    const id = queue.pop()!;
    visited++;
    for (const c of dag[id].children) if (--indegree[c] === 0) queue.push(c);
  }
  if (visited === dag.length) return;
  // Walk parents among unvisited layers until one repeats: that layer is on a cycle.
  const left = new Set(dag.filter((_, i) => indegree[i] > 0).map((l) => l.id));
  let id = Math.min(...left);
  const seen = new Set<number>();
  while (!seen.has(id)) {
    seen.add(id);
    id = dag[id].parents.find((p) => left.has(p))!;
  }
  const layer: DagLayer = dag[id];
  throw invalid(`${file}: layer ${id} ('${layer.name}')`, 'is on a cycle of parent/child edges');
}
