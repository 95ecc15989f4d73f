// Candidate Fused Convolutional Modules, found by following the DAG's edges (not list order), and the
// legality rules that make a pair fusable. Legality is a pure function with explicit rules; the cost model
// that chooses among legal candidates lives elsewhere (cost.ts, optimal.ts).
//
// A candidate is conv1 -> [one zero Pad layer, before a DW only] -> conv2 with kind PW->DW (pwdw), DW->PW
// (dwpw) or PW->PW (pwpw). Each conv applies its own activation (the layer's `activation`, as the DAG writer
// folds it); a residual Add after conv2 may become its epilogue. What may fuse is stated in fusion-rules.ts,
// which the rewrite applies to the graph too.

import { strideHW, type Dag, type DagLayer } from './dag.js';
import { fcmKind, mayStandBetween, type ChainLink, type ConvType, type FcmKind } from './fusion-rules.js';

export type { FcmKind } from './fusion-rules.js';

export interface Candidate {
  kind: FcmKind;
  first: number;
  second: number;
  /** Layers between the two convolutions: a Pad (folded into the DW's padding), or none. */
  between: number[];
  /** Zero padding [t, l, b, r] of a Pad layer between, added to the DW's own. */
  extraPads?: number[];
  /** Epilogue layers after the second conv that the rewrite folds into it: a residual Add. */
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

export const isConvLayer = (l: DagLayer) => l.type === 's' || l.type === 'dw' || l.type === 'pw' || l.type === 'fc';

export function isPadLayer(l: DagLayer): boolean {
  if (isConvLayer(l)) return false;
  return l.op !== undefined ? l.op === 'Pad' : l.name.toLowerCase() === 'pad';
}

export function isAddLayer(l: DagLayer): boolean {
  if (isConvLayer(l)) return false;
  return l.op !== undefined ? l.op === 'Add' : l.name.toLowerCase() === 'add';
}

/** Zero spatial padding of a Pad layer, [t, l, b, r]; undefined when it pads anything else or is not zero. */
function padLayerPads(l: DagLayer): number[] | undefined {
  if (l.spatial_zero_pad === false) return undefined;
  if (l.mode !== undefined && l.mode !== 'constant') return undefined;
  if (typeof l.value === 'number' && l.value !== 0) return undefined;
  const p = [l.padding_top, l.padding_left, l.padding_bottom, l.padding_right];
  if (p.some((v) => v !== undefined && (!Number.isInteger(v) || v < 0))) return undefined;
  if (l.padding_channels !== undefined && l.padding_channels !== 0) return undefined;
  return p.map((v) => v ?? 0);
}

/** The layers reachable from `from` by child edges. */
function reachable(dag: Dag, from: number[]): Set<number> {
  const seen = new Set<number>();
  const stack = [...from];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...dag[id].children);
  }
  return seen;
}

/**
 * Whether conv layers `first` and `second` can form an FCM. Rules:
 * 1. both are conv layers and the pair is PW->DW, DW->PW or PW->PW;
 * 2. the PW layers have stride 1 and no padding (an FCM node carries only the DW layer's geometry);
 * 3. `second` is reached from `first` by a chain of single-child edges through what fusion-rules.ts
 *    mayStandBetween allows: before a DW, at most one zero spatial Pad layer (folded into the DW's padding);
 *    no standalone activation (an FCM's first layer applies only its own `activation`);
 * 4. every tensor on the chain (conv1's output, the Pad's) has exactly one consumer;
 * 5. none of them is a model output (`model_output` layers, and `graphOutputs`);
 * 6. fusing creates no cycle: no path leaves the chain and comes back into `second`.
 */
export function checkLegality(dag: Dag, first: number, second: number, graphOutputs: ReadonlySet<number> = new Set()): Legality {
  const violations: { rule: LegalityViolation; detail: string }[] = [];
  const a = dag[first];
  const b = dag[second];
  if (!a || !b || !isConvLayer(a) || !isConvLayer(b)) {
    return { ok: false, violations: [{ rule: 'not-conv-pair', detail: `layers ${first} and ${second} are not both conv layers` }] };
  }
  const kind = fcmKind(a.type, b.type);
  if (!kind) {
    return { ok: false, violations: [{ rule: 'unsupported-kind', detail: `${a.type} -> ${b.type} is not an FCM (pwdw, dwpw, pwpw)` }] };
  }
  for (const l of [a, b]) {
    if (l.type !== 'pw') continue;
    const padded = Array.isArray(l.pads) && l.pads.some((p) => p !== 0);
    // Shapes too: the FusePlanner reference's DAGs record stride 1 for some strided 1x1 convolutions.
    const resized = l.ifms_shape !== undefined && l.ofms_shape !== undefined && (l.ifms_shape[1] !== l.ofms_shape[1] || l.ifms_shape[2] !== l.ofms_shape[2]);
    const [sh, sw] = strideHW(l);
    if (sh !== 1 || sw !== 1 || padded || resized) violations.push({ rule: 'pw-stride', detail: `pointwise layer ${l.id} has stride ${sh === sw ? sh : `[${sh}, ${sw}]`}${padded ? ' and padding' : ''}` });
  }

  // Walk the chain from `first`: each step must be the only consumer of the previous output.
  const between: number[] = [];
  const links: ChainLink[] = [];
  let extraPads: number[] | undefined;
  let cur = a;
  let connected = false;
  let stop = '';
  for (;;) {
    if (graphOutputs.has(cur.id) || cur.model_output === true) violations.push({ rule: 'graph-output', detail: `the output of layer ${cur.id} is a model output` });
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
    const link = chainLink(next);
    if (next.parents.length !== 1 || !mayStandBetween(links, link, b.type as ConvType)) {
      stop = `: layer ${next.id} (${next.op ?? next.name}) may not stand between them`;
      break;
    }
    links.push(link);
    if (link.kind === 'pad') extraPads = link.pads;
    between.push(next.id);
    cur = next;
  }
  if (!connected) {
    violations.push({ rule: 'not-connected', detail: `layer ${second} is not the sole consumer of layer ${first} (through at most a zero Pad before a DW)${stop}` });
  }

  // Cycle: a path from the group {first, between...} that leaves it and re-enters at `second` (only asked of a
  // connected pair: otherwise the chain itself leaves the group). No such path can re-enter `first` or a layer
  // between (the DAG is acyclic, and each layer between has one parent, on the chain).
  if (connected) {
    const group = new Set([first, ...between, second]);
    const exits = [first, ...between].flatMap((id) => dag[id].children).filter((c) => !group.has(c));
    if (reachable(dag, exits).has(second)) {
      violations.push({ rule: 'cycle', detail: `a path leaves the chain ${first} -> ${second} and comes back into layer ${second}` });
    }
  }

  if (violations.length > 0) return { ok: false, violations };
  return extraPads ? { ok: true, kind, between, extraPads } : { ok: true, kind, between };
}

/** Epilogue layers after a conv that fuseEpilogues folds into it: a residual Add (its activation is the layer's own). */
export function epilogueOf(dag: Dag, conv: number): number[] {
  const cur = dag[conv];
  if (cur.children.length !== 1 || cur.model_output === true) return [];
  const add = dag[cur.children[0]];
  return isAddLayer(add) && add.parents.length === 2 ? [add.id] : [];
}

/** A layer as fusion-rules.ts sees it between two convolutions. */
const chainLink = (l: DagLayer): ChainLink => (isPadLayer(l) ? { kind: 'pad', pads: padLayerPads(l) } : { kind: 'other' });

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

/** The conv layer reached from `a` directly or through one single-child Pad layer, if any. */
function chainEnd(dag: Dag, a: DagLayer): number | undefined {
  let cur = a;
  for (let steps = 0; steps < 2; steps++) {
    if (cur.children.length !== 1) return undefined;
    const next = dag[cur.children[0]];
    if (isConvLayer(next)) return next.id;
    if (!isPadLayer(next)) return undefined;
    cur = next;
  }
  return undefined;
}
