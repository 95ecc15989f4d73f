// Messages between the fuzz engine (parent) and its worker processes.
import type { FuzzCase } from './cases.js';
import type { Target } from './corpus.js';

export type Outcome =
  | { kind: 'ok' }
  | { kind: 'error'; exitCode: number; message: string }
  | { kind: 'crash'; name: string; message: string; frame: string; stack: string }
  | { kind: 'hang'; ms: number }
  | { kind: 'memory'; detail: string }
  | { kind: 'skip'; message: string };

export interface Task {
  id: number;
  /** A generated case (materialized in the worker) or raw bytes for a target. */
  fuzzCase?: Pick<FuzzCase, 'target' | 'seed' | 'mutations'>;
  raw?: { target: Target; b64: string };
  /** Send the materialized bytes back (for saving a crash). */
  wantBytes?: boolean;
  /** Only materialize (bytes of a case that hangs or kills the worker). */
  materializeOnly?: boolean;
  maxMemory: number;
}

export type FromWorker =
  | { type: 'ready'; corpus: { name: string; target: Target; size: number }[] }
  | { type: 'result'; id: number; outcome: Outcome; ms: number; b64?: string };

/** Error type + top stack frame ("file:line", relative to the project): how crashes are told apart. */
export function crashSignature(o: Outcome): string {
  switch (o.kind) {
    case 'crash': return `${o.name} at ${o.frame}`;
    case 'hang': return 'hang (over the per-case time limit)';
    case 'memory': return `memory over the limit (${o.detail.split(':')[0]})`;
    default: return o.kind;
  }
}

export function topFrame(stack: string, root: string): string {
  for (const line of stack.split('\n')) {
    const m = /^\s+at (?:.*? \()?(.*?):(\d+):\d+\)?$/.exec(line);
    if (!m) continue;
    let file = m[1].replace(/^file:\/\//, '');
    if (file.startsWith(root)) file = file.slice(root.length).replace(/^[\\/]+/, '');
    return `${file}:${m[2]}`;
  }
  return '<no frame>';
}
