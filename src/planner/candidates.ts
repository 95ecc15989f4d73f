// Candidate Fused Convolutional Modules, found by following the DAG's edges (not list order), and the
// legality rules that make a pair fusable. Legality is a pure function with explicit rules; the cost model
// that chooses among legal candidates lives elsewhere (cost.ts, optimal.ts).
//
// A candidate is conv1 -> [one activation layer] -> [one zero Pad layer, before a DW only] -> conv2 with
// kind PW->DW (pwdw), DW->PW (dwpw) or PW->PW (pwpw). An activation layer directly after conv1 becomes the
// module's first epilogue; after conv2, an activation and then a residual Add may become its last epilogue.

import type { Dag, DagLayer } from './dag.js';

export type FcmKind = 'pwdw' | 'dwpw' | 'pwpw';

export interface Candidate {
  kind: FcmKind;
  first: number;
  second: number;
  /** Layers between the two convolutions, in order: an activation, a Pad (folded into the DW's padding). */
  between: number[];
  /** Zero padding [t, l, b, r] of a Pad layer between, added to the DW's own. */
  extraPads?: number[];
  /** Epilogue layers after the second conv that the rewrite folds into it: an activation, a residual Add. */
  epilogue: number[];
}

/** Why a pair is not fusable. Several rules may fail at once; all are reported. */
export type LegalityViolation =
  | 'not-conv-pair'
  | 'unsupported-kind'
  | 'pw-stride'
  | 'not-connected'
  | 'second-consumer'
  | 'graph-output'
  | 'cycle';

export type Legality =
  | { ok: true; kind: FcmKind; between: number[]; extraPads?: number[] }
  | { ok: false; violations: { rule: LegalityViolation; detail: string }[] };

const activationOps = new Set(['Relu', 'Clip', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'SiLU', 'LeakyRelu', 'Tanh']);
// TFLite op names (FusePlanner reference DAGs) of standalone activations.
const activationNames = new Set(['relu', 'relu6', 'relu_n1_to_1', 'hard_swish', 'logistic', 'leaky_relu', 'tanh']);

export const isConvLayer = (l: DagLayer) => l.type === 's' || l.type === 'dw' || l.type === 'pw' || l.type === 'fc';

export function isActivationLayer(l: DagLayer): boolean {
  if (isConvLayer(l)) return false;
  return l.op !== undefined ? activationOps.has(l.op) : activationNames.has(l.name.toLowerCase());
}

export function isPadLayer(l: DagLayer): boolean {
  if (isConvLayer(l)) return false;
  return l.op !== undefined ? l.op === 'Pad' : l.name.toLowerCase() === 'pad';
}

export function isAddLayer(l: DagLayer): boolean {
  if (isConvLayer(l)) return false;
  return l.op !== undefined ? l.op === 'Add' : l.name.toLowerCase() === 'add';
}

function fcmKind(a: DagLayer, b: DagLayer): FcmKind | undefined {
  if (a.type === 'pw' && b.type === 'dw') return 'pwdw';
  if (a.type === 'dw' && b.type === 'pw') return 'dwpw';
  if (a.type === 'pw' && b.type === 'pw') return 'pwpw';
  return undefined;
}

/** Zero spatial padding of a Pad layer, [t, l, b, r]; undefined when it pads anything else or is not zero. */
function padLayerPads(l: DagLayer): number[] | undefined {
  if (l.mode !== undefined && l.mode !== 'constant') return undefined;
  if (typeof l.value === 'number' && l.value !== 0) return undefined;
  const p = [l.padding_top, l.padding_left, l.padding_bottom, l.padding_right];
  if (p.some((v) => v !== undefined && (!Number.isInteger(v) || v < 0))) return undefined;
  if (l.padding_channels !== undefined && l.padding_channels !== 0) return undefined;
  return p.map((v) => v ?? 0);
}

/** The layers reachable from `from` by child edges, not entering `stop`. */
function reachable(dag: Dag, from: number[], stop: ReadonlySet<number>): Set<number> {
  const seen = new Set<number>();
  const stack = from.filter((id) => !stop.has(id));
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const c of dag[id].children) if (!stop.has(c) && !seen.has(c)) stack.push(c);
  }
  return seen;
}

/**
 * Whether conv layers `first` and `second` can form an FCM. Rules:
 * 1. both are conv layers and the pair is PW->DW, DW->PW or PW->PW;
 * 2. the PW layers have stride 1 and no padding (an FCM node carries only the DW layer's geometry);
 * 3. `second` is reached from `first` by a chain of single-child edges through at most one activation layer
 *    and, before a DW, at most one zero spatial Pad layer (folded into the DW's padding);
 * 4. every tensor on the chain (conv1's output, the activation's, the Pad's) has exactly one consumer;
 * 5. none of them is a model output (`graphOutputs`: layers whose output the model returns);
 * 6. fusing creates no cycle: no path leaves the chain and comes back into `second`.
 */
export function checkLegality(dag: Dag, first: number, second: number, graphOutputs: ReadonlySet<number> = new Set()): Legality {
  const violations: { rule: LegalityViolation; detail: string }[] = [];
  const a = dag[first];
  const b = dag[second];
  if (!a || !b || !isConvLayer(a) || !isConvLayer(b)) {
    return { ok: false, violations: [{ rule: 'not-conv-pair', detail: `layers ${first} and ${second} are not both conv layers` }] };
  }
  const kind = fcmKind(a, b);
  if (!kind) {
    return { ok: false, violations: [{ rule: 'unsupported-kind', detail: `${a.type} -> ${b.type} is not an FCM (pwdw, dwpw, pwpw)` }] };
  }
  for (const l of [a, b]) {
    if (l.type !== 'pw') continue;
    const padded = Array.isArray(l.pads) && l.pads.some((p) => p !== 0);
    // Shapes too: the FusePlanner reference's DAGs record stride 1 for some strided 1x1 convolutions.
    const resized = l.ifms_shape !== undefined && l.ofms_shape !== undefined && (l.ifms_shape[1] !== l.ofms_shape[1] || l.ifms_shape[2] !== l.ofms_shape[2]);
    if ((l.strides ?? 1) !== 1 || padded || resized) violations.push({ rule: 'pw-stride', detail: `pointwise layer ${l.id} has stride ${l.strides ?? 1}${padded ? ' and padding' : ''}` });
  }

  // Walk the chain from `first`: each step must be the only consumer of the previous output.
  const between: number[] = [];
  let extraPads: number[] | undefined;
  let cur = a;
  let connected = false;
  let activations = 0;
  for (;;) {
    if (graphOutputs.has(cur.id)) violations.push({ rule: 'graph-output', detail: `the output of layer ${cur.id} is a model output` });
    if (cur.children.length !== 1) {
      if (cur.children.includes(second)) {
        violations.push({ rule: 'second-consumer', detail: `the output of layer ${cur.id} has ${cur.children.length} consumers (${cur.children.join(', ')})` });
        connected = true;
      }
      break;
    }
    const next = dag[cur.children[0]];
    if (next.id === second) {
      connected = true;
      break;
    }
    if (isActivationLayer(next) && activations === 0 && extraPads === undefined && next.parents.length === 1) {
      activations++;
    } else if (isPadLayer(next) && b.type === 'dw' && extraPads === undefined && next.parents.length === 1 && padLayerPads(next)) {
      extraPads = padLayerPads(next);
    } else {
      break;
    }
    between.push(next.id);
    cur = next;
  }
  if (!connected) {
    violations.push({ rule: 'not-connected', detail: `layer ${second} is not the sole consumer of layer ${first} (through at most an activation and a Pad)` });
  }

  // Cycle: a path from the group {first, between...} that leaves it and re-enters at `second`.
  const group = new Set([first, ...between, second]);
  const exits = [first, ...between].flatMap((id) => dag[id].children).filter((c) => !group.has(c));
  const out = reachable(dag, exits, new Set([first, ...between]));
  if (out.has(second) || b.parents.some((p) => out.has(p))) {
    violations.push({ rule: 'cycle', detail: `a path leaves the chain ${first} -> ${second} and comes back into layer ${second}` });
  }

  if (violations.length > 0) return { ok: false, violations };
  return extraPads ? { ok: true, kind, between, extraPads } : { ok: true, kind, between };
}

/** Epilogue layers after a conv that fuseEpilogues folds into it: an activation, then a residual Add. */
export function epilogueOf(dag: Dag, conv: number): number[] {
  const out: number[] = [];
  let cur = dag[conv];
  if (cur.children.length === 1 && isActivationLayer(dag[cur.children[0]]) && dag[cur.children[0]].parents.length === 1) {
    cur = dag[cur.children[0]];
    out.push(cur.id);
  }
  if (cur.children.length === 1) {
    const add = dag[cur.children[0]];
    if (isAddLayer(add) && add.parents.length === 2 && add.parents.includes(cur.id)) out.push(add.id);
  }
  return out;
}

/**
 * Every legal candidate of the DAG: for each PW or DW conv layer, the conv layer its output chain leads
 * to (at most one, so each conv is the first layer of at most one candidate).
 */
export function findCandidates(dag: Dag, graphOutputs: ReadonlySet<number> = new Set()): Candidate[] {
  const out: Candidate[] = [];
  for (const a of dag) {
    if (a.type !== 'pw' && a.type !== 'dw') continue;
    const second = chainEnd(dag, a);
    if (second === undefined) continue;
    const r = checkLegality(dag, a.id, second, graphOutputs);
    if (!r.ok) continue;
    const c: Candidate = { kind: r.kind, first: a.id, second, between: r.between, epilogue: epilogueOf(dag, second) };
    if (r.extraPads) c.extraPads = r.extraPads;
    out.push(c);
  }
  return out;
}

/** The conv layer reached from `a` through single-child activation/Pad layers, if any. */
function chainEnd(dag: Dag, a: DagLayer): number | undefined {
  let cur = a;
  for (let steps = 0; steps < 3; steps++) {
    if (cur.children.length !== 1) return undefined;
    const next = dag[cur.children[0]];
    if (isConvLayer(next)) return next.id;
    if (!isActivationLayer(next) && !isPadLayer(next)) return undefined;
    cur = next;
  }
  return undefined;
}
