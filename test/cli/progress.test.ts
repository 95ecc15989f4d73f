// Progress on stderr: silent for 2 s, then a line rewritten in place on a terminal or a plain line every 5 s
// elsewhere; the runtime reports pipeline compilation to the sink the CLI sets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProgressDisplay } from '../../src/cli/progress.js';
import { reportProgress, setProgressSink } from '../../src/progress.js';
import { createSession } from '../../src/pipeline/session.js';
import { graph } from '../graph/helpers.js';
import { exportOnnx } from '../../converters/onnx/export.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (s: string) => { writes.push(s); return true; } } as unknown as NodeJS.WriteStream };
}

test('not a terminal: nothing in the first 2 s, then a plain line at most every 5 s; the sink is removed at the end', () => {
  let t = 0;
  const { writes, stream } = fakeStream(false);
  const d = startProgressDisplay(stream, () => t);
  reportProgress('compiling GPU pipelines', 1);
  t = 1999; reportProgress('compiling GPU pipelines', 2);
  assert.deepEqual(writes, []);
  t = 2000; reportProgress('compiling GPU pipelines', 3, 10);
  t = 6999; reportProgress('compiling GPU pipelines', 4, 10);
  t = 7000; reportProgress('compiling GPU pipelines', 5, 10);
  d.end();
  reportProgress('compiling GPU pipelines', 6, 10);
  assert.deepEqual(writes, ['compiling GPU pipelines: 3 of 10 (2 s)\n', 'compiling GPU pipelines: 5 of 10 (7 s)\n']);
});

test('a terminal: one line rewritten in place (at most every 100 ms), finished with a newline', () => {
  let t = 0;
  const { writes, stream } = fakeStream(true);
  const d = startProgressDisplay(stream, () => t);
  reportProgress('x', 1);
  t = 2500; reportProgress('x', 2);
  t = 2550; reportProgress('x', 3);
  t = 2600; reportProgress('x', 4);
  d.end();
  assert.deepEqual(writes, ['\rx: 2 (3 s)\x1b[K', '\rx: 4 (3 s)\x1b[K', '\n']);
});

test('creating a session reports each pipeline it compiles', async () => {
  const calls: [string, number][] = [];
  const prev = setProgressSink((what, done) => { calls.push([what, done]); });
  try {
    // Shapes no other test uses, so that the device-wide pipeline cache does not already hold them.
    const g = graph({ inputs: { x: [1, 13, 7] }, nodes: [{ op: 'Relu', in: ['x'], out: ['a'] }, { op: 'Sigmoid', in: ['a'], out: ['y'] }], outputs: ['y'] });
    const s = await createSession(exportOnnx(g), { plan: 'unfused' });
    s.dispose();
  } finally {
    setProgressSink(prev);
  }
  assert.ok(calls.length >= 1, 'at least one pipeline compiled');
  assert.ok(calls.every(([what]) => what === 'compiling GPU pipelines'));
  assert.ok(calls.every(([, n], i) => i === 0 || n > calls[i - 1][1]), 'counts grow');
});
