// Model bundles (converters/bundle.ts): MediaPipe Tasks .task zips of TFLite models, a member named after '#'. The
// archives are written here, stored and deflated, with bytes ahead of the first entry as MediaPipe's
// pose_landmarker_full.task has, and nested as gesture_recognizer.task nests hand_landmarker.task.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSeedMobileNetV1 } from '../../fixtures/tflite-builder.js';
import { buildZip as zip } from '../../fixtures/zip-builder.js';
import { loadModel, readModelFile } from '../../src/graph/load.js';
import { isModelBundle, openBundle, splitMemberPath } from '../../converters/bundle.js';
import { hasZipDirectory, zipEntries } from '../../converters/zip.js';
import { FcmError } from '../../src/errors.js';
import { fcmOpt, ownLines } from '../cli/spawn-cli.js';

const detector = buildSeedMobileNetV1(7, 32, false, 2);
const landmarks = buildSeedMobileNetV1(9, 32, false, 3);
const labels = new TextEncoder().encode('person\n');
// A TFLite file whose metadata packs associated files as a zip after the flatbuffer.
const withMetadata = (() => {
  const tail = zip([['labels.txt', labels, 'stored']]);
  const b = new Uint8Array(detector.length + tail.length);
  b.set(detector); b.set(tail, detector.length);
  return b;
})();

function message(e: unknown): string {
  assert.ok(e instanceof FcmError, `an FcmError, got ${String(e)}`);
  return e.message;
}

async function rejects(p: Promise<unknown>, kind: 'invalid' | 'limit', pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.match(message(e), pattern);
    assert.equal((e as FcmError).kind, kind);
    return true;
  });
}

test('zipEntries: offsets shift by the bytes ahead of the first entry; stored and deflated members read back', () => {
  for (const prefix of [0, 2, 100]) {
    const z = zip([['a.tflite', detector, 'stored'], ['b.tflite', landmarks, 'deflated']], prefix);
    assert.ok(hasZipDirectory(z));
    const es = zipEntries(z, 'z');
    assert.deepEqual(es.map((e) => [e.name, e.size]), [['a.tflite', detector.length], ['b.tflite', landmarks.length]]);
    assert.deepEqual(es[0].read(), detector);
    assert.deepEqual(es[1].read(), landmarks);
  }
  assert.equal(hasZipDirectory(detector), false, 'a flatbuffer alone has no zip directory');
});

test('isModelBundle: a zip with a .tflite or .task member; not a Keras zip, not a TFLite file ending in a metadata zip', () => {
  assert.ok(isModelBundle(zip([['a.tflite', detector, 'stored']], 2)));
  assert.ok(isModelBundle(zip([['inner.task', zip([['a.tflite', detector, 'stored']]), 'stored']])));
  assert.equal(isModelBundle(zip([['config.json', labels, 'stored'], ['model.weights.h5', labels, 'stored']])), false);
  assert.ok(hasZipDirectory(withMetadata));
  assert.equal(isModelBundle(withMetadata), false);
  assert.equal(isModelBundle(detector), false);
});

test('openBundle: members by name, nested bundles, the only model unnamed, and each refusal naming the bundle', () => {
  const pose = zip([['pose_detector.tflite', detector, 'stored'], ['pose_landmarks_detector.tflite', landmarks, 'deflated'], ['labels.txt', labels, 'stored']], 2);
  const got = openBundle(pose, 'pose.task', ['pose_landmarks_detector.tflite'], 1 << 30);
  assert.deepEqual(got.bytes, landmarks);
  assert.equal(got.source, 'pose.task#pose_landmarks_detector.tflite');

  assert.throws(() => openBundle(pose, 'pose.task', [], 1 << 30),
    (e) => /^pose\.task: is a model bundle of 2 models \(pose_detector\.tflite, pose_landmarks_detector\.tflite\); name one after a '#', as 'pose\.task#pose_detector\.tflite'$/.test(message(e)));
  assert.throws(() => openBundle(pose, 'pose.task', ['hand.tflite'], 1 << 30),
    (e) => /^pose\.task: has no member 'hand\.tflite' \(its models: pose_detector\.tflite, pose_landmarks_detector\.tflite\)$/.test(message(e)));
  assert.throws(() => openBundle(pose, 'pose.task', ['labels.txt'], 1 << 30), (e) => /^pose\.task#labels\.txt: is not a TFLite model/.test(message(e)));
  assert.throws(() => openBundle(pose, 'pose.task', ['pose_detector.tflite', 'x'], 1 << 30),
    (e) => /^pose\.task#pose_detector\.tflite: is a TFLite model, not a bundle: 'x' cannot be in it$/.test(message(e)));
  assert.throws(() => openBundle(zip([['labels.txt', labels, 'stored']]), 'l.task', [], 1 << 30), (e) => /no TFLite model/.test(message(e)));

  // Nested: the models are listed through the inner bundle; the only model of a one-model bundle needs no name.
  const gesture = zip([['hand_landmarker.task', pose, 'stored'], ['gesture.tflite', withMetadata, 'deflated']]);
  assert.deepEqual(openBundle(gesture, 'g.task', ['hand_landmarker.task', 'pose_detector.tflite'], 1 << 30).bytes, detector);
  assert.throws(() => openBundle(gesture, 'g.task', [], 1 << 30),
    (e) => /3 models \(hand_landmarker\.task#pose_detector\.tflite, hand_landmarker\.task#pose_landmarks_detector\.tflite, gesture\.tflite\)/.test(message(e)));
  const one = openBundle(zip([['only.task', zip([['m.tflite', landmarks, 'deflated']]), 'stored']]), 'one.task', [], 1 << 30);
  assert.deepEqual(one.bytes, landmarks);
  assert.equal(one.source, 'one.task#only.task#m.tflite');
  // A TFLite member ending in its metadata zip is the model, not a bundle.
  assert.deepEqual(openBundle(gesture, 'g.task', ['gesture.tflite'], 1 << 30).bytes, withMetadata);

  // The member's size against the budget before it is inflated (exit 4).
  const zeros = new Uint8Array(1 << 20);
  zeros.set(detector.subarray(0, 8));
  assert.throws(() => openBundle(zip([['big.tflite', zeros, 'deflated']]), 'big.task', [], 1 << 16),
    (e) => /^big\.task#big\.tflite: the member has 1048576 bytes, over the memory budget of 65536 bytes/.test(message(e)) && (e as FcmError).kind === 'limit');
});

test('loadModel and readModelFile: FILE.task#MEMBER imports the member as its own .tflite; the bundle alone when it holds one model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-bundle-'));
  try {
    const pose = join(dir, 'pose_landmarker.task');
    writeFileSync(pose, zip([['pose_detector.tflite', detector, 'stored'], ['pose_landmarks_detector.tflite', landmarks, 'deflated']], 2));
    const single = join(dir, 'detector.task');
    writeFileSync(single, zip([['pose_detector.tflite', detector, 'deflated']]));
    const plain = join(dir, 'landmarks.tflite');
    writeFileSync(plain, landmarks);

    const a = await loadModel(`${pose}#pose_landmarks_detector.tflite`);
    const b = await loadModel(plain);
    assert.equal(a.source, `${pose}#pose_landmarks_detector.tflite`);
    assert.deepEqual(a.nodes.map((n) => [n.op, n.inputs, n.outputs]), b.nodes.map((n) => [n.op, n.inputs, n.outputs]));
    assert.deepEqual([...a.tensors.keys()], [...b.tensors.keys()]);

    assert.equal((await loadModel(single)).nodes.length, (await loadModel(detector)).nodes.length);
    assert.equal((await loadModel(zip([['m.tflite', detector, 'stored']]), { source: 'm.task' })).source, 'm.task#m.tflite');
    await rejects(loadModel(pose), 'invalid', /pose_landmarker\.task: is a model bundle of 2 models/);
    await rejects(loadModel(`${pose}#missing.tflite`), 'invalid', /has no member 'missing\.tflite'/);
    await rejects(loadModel(`${plain}#x.tflite`), 'invalid', /landmarks\.tflite: is not a model bundle \(zip\): 'x\.tflite' cannot be in it$/);
    // A path that exists as given is that file, '#' and all.
    const hashed = join(dir, 'a#b.tflite');
    writeFileSync(hashed, detector);
    assert.deepEqual(splitMemberPath(hashed), { file: hashed, members: [] });
    assert.equal((await loadModel(hashed)).nodes.length, (await loadModel(detector)).nodes.length);

    const r = await readModelFile(`${pose}#pose_detector.tflite`);
    assert.deepEqual([r.bytes, r.source, r.bundled], [detector, `${pose}#pose_detector.tflite`, true]);
    const p = await readModelFile(plain);
    assert.deepEqual([p.source, p.bundled], [plain, false]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: a member of a bundle plans as its own file; the bundle of two is exit 2 in one line naming both', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-bundle-cli-'));
  try {
    const pose = join(dir, 'pose.task');
    writeFileSync(pose, zip([['pose_detector.tflite', detector, 'stored'], ['pose_landmarks_detector.tflite', landmarks, 'deflated']], 2));
    const ok = await fcmOpt(['plan', `${pose}#pose_detector.tflite`, '--hw', 'h100']);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /^plan for pose\.task#pose_detector\.tflite on h100/);
    const bad = await fcmOpt(['dag', pose]);
    assert.equal(bad.code, 2);
    assert.deepEqual(ownLines(bad.err), [`fcm-opt: ${pose}: is a model bundle of 2 models (pose_detector.tflite, pose_landmarks_detector.tflite); name one after a '#', as '${pose}#pose_detector.tflite'`]);
    assert.equal(bad.out, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
