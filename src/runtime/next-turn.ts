// Runs a callback on a later turn of the event loop, after the promise continuations queued now: Node's setImmediate,
// in a browser a MessageChannel message (setTimeout(0) is clamped to 4 ms once nested), else setTimeout.

type Later = (f: () => void) => void;

function pick(): Later {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown };
  if (typeof g.setImmediate === 'function') return (f) => { g.setImmediate!(f); };
  if (typeof MessageChannel === 'function') {
    const queue: (() => void)[] = [];
    const ch = new MessageChannel();
    // A browser's MessagePort (Node's, with its own setImmediate, is never used here).
    (ch.port1 as unknown as { onmessage: (() => void) | null }).onmessage = () => { queue.shift()?.(); };
    return (f) => { queue.push(f); ch.port2.postMessage(0); };
  }
  return (f) => { setTimeout(f, 0); };
}

let later: Later | undefined;

export function nextTurn(f: () => void): void {
  (later ??= pick())(f);
}
