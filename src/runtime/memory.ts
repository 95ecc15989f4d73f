// Activation memory planned by tensor lifetimes: walk the schedule, give each tensor a buffer ("slot") when
// it is first written and return the slot when its last reader has run, so tensors whose lifetimes do not
// overlap share a buffer. Graph inputs are live from the start, graph outputs to the end. A step's outputs
// are placed before its inputs are released: WebGPU refuses a buffer bound both read-only and writable in
// one dispatch, and a kernel must not overwrite what it still reads.

export interface MemoryStep {
  reads: string[];
  writes: string[];
}

export interface MemoryPlanInput {
  inputs: string[];
  outputs: string[];
  steps: MemoryStep[];
  bytes: (tensor: string) => number;
}

export interface MemoryPlan {
  /** Tensor -> slot index. */
  slotOf: Map<string, number>;
  /** Bytes of each slot (its largest tenant). */
  slotBytes: number[];
  /** Sum of the slots: the activation memory the session allocates. */
  peakBytes: number;
  /** What one buffer per tensor would take. */
  unsharedBytes: number;
}

export function planMemory(p: MemoryPlanInput): MemoryPlan {
  const lastUse = new Map<string, number>();
  const end = p.steps.length;
  p.steps.forEach((s, i) => {
    for (const x of [...s.reads, ...s.writes]) lastUse.set(x, i);
  });
  for (const y of p.outputs) lastUse.set(y, end);
  for (const x of p.inputs) if (!lastUse.has(x)) lastUse.set(x, -1);

  const slotOf = new Map<string, number>();
  const slotBytes: number[] = [];
  const free: number[] = [];
  let unshared = 0;
  const place = (t: string) => {
    if (slotOf.has(t)) return;
    const need = p.bytes(t);
    unshared += need;
    // Best fit among free slots: the smallest that holds it, else grow the largest free one, else a new slot.
    let best = -1;
    for (const s of free) if (slotBytes[s] >= need && (best < 0 || slotBytes[s] < slotBytes[best])) best = s;
    if (best < 0 && free.length) {
      best = free.reduce((a, b) => (slotBytes[b] > slotBytes[a] ? b : a));
      slotBytes[best] = need;
    }
    if (best >= 0) free.splice(free.indexOf(best), 1);
    else { best = slotBytes.length; slotBytes.push(need); }
    slotOf.set(t, best);
  };
  const release = (t: string, i: number) => {
    if (lastUse.get(t) === i && slotOf.has(t) && !free.includes(slotOf.get(t)!)) free.push(slotOf.get(t)!);
  };
  for (const x of p.inputs) place(x);
  for (const x of p.inputs) release(x, -1);
  p.steps.forEach((s, i) => {
    for (const y of s.writes) place(y);
    for (const x of new Set([...s.reads, ...s.writes])) release(x, i);
  });
  return { slotOf, slotBytes, peakBytes: slotBytes.reduce((a, b) => a + b, 0), unsharedBytes: unshared };
}
