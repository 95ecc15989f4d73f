// Model bundles: MediaPipe Tasks `.task` files are zips of a task's TFLite models (pose_landmarker_full.task holds
// pose_detector.tflite and pose_landmarks_detector.tflite), and of other bundles (gesture_recognizer.task holds
// hand_landmarker.task). A model inside one is named after a '#': `pose_landmarker_full.task#pose_detector.tflite`,
// through nested bundles `gesture_recognizer.task#hand_landmarker.task#hand_detector.tflite`. A bundle of one model
// needs no name.
import { existsSync, statSync } from 'node:fs';
import { invalid, overLimit } from '../src/errors.js';
import { hasZipDirectory, zipEntries, type ZipEntry } from './zip.js';

const isTfliteBytes = (b: Uint8Array) => b.length >= 8 && String.fromCharCode(b[4], b[5], b[6], b[7]) === 'TFL3';
const modelName = (name: string) => /\.(tflite|task)$/i.test(name);

/** Whether zip bytes are a model bundle: an archive with a .tflite or .task member (a Keras 3 .keras zip has none). */
export function isModelBundle(b: Uint8Array, source = '<bytes>'): boolean {
  // A TFLite file may end in a zip of its metadata's associated files: it is a model, not a bundle.
  if (isTfliteBytes(b) || !hasZipDirectory(b)) return false;
  try {
    return zipEntries(b, source).some((e) => modelName(e.name));
  } catch {
    return false;
  }
}

/**
 * `path` split into the file and the members named after it: the longest prefix ending before a '#' that is an
 * existing file, the rest split at '#'. A path that exists as given, or has no such prefix, is the file alone.
 */
export function splitMemberPath(path: string): { file: string; members: string[] } {
  if (existsSync(path)) return { file: path, members: [] };
  for (let i = path.lastIndexOf('#'); i > 0; i = path.lastIndexOf('#', i - 1)) {
    const file = path.slice(0, i);
    if (existsSync(file) && statSync(file).isFile()) return { file, members: path.slice(i + 1).split('#') };
  }
  return { file: path, members: [] };
}

/** The models of a bundle, nested ones as 'inner.task#model.tflite', in archive order. */
function modelsIn(entries: ZipEntry[], source: string, depth: number): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (/\.tflite$/i.test(e.name)) out.push(e.name);
    else if (/\.task$/i.test(e.name) && depth < maxDepth) {
      const b = e.read();
      if (hasZipDirectory(b)) out.push(...modelsIn(zipEntries(b, `${source}#${e.name}`), `${source}#${e.name}`, depth + 1).map((m) => `${e.name}#${m}`));
    }
  }
  return out;
}

/** Bundles nest one or two deep in practice; deeper is a crafted file. */
const maxDepth = 4;

/**
 * The model a bundle's bytes hold at `members` (none: its only model): its bytes and its name `source#member...`.
 * Exit 2 naming the bundle where a member is absent, is no model, or the bundle holds several and none is named;
 * exit 4 where the member is larger than `maxBytes`.
 */
export function openBundle(bytes: Uint8Array, source: string, members: string[], maxBytes: number): { bytes: Uint8Array; source: string } {
  let cur = bytes, where = source;
  const rest = [...members];
  for (let depth = 0; ; depth++) {
    if (depth > maxDepth) throw invalid(where, `bundles nest more than ${maxDepth} deep`);
    const entries = zipEntries(cur, where);
    if (rest.length === 0) {
      const models = modelsIn(entries, where, depth);
      if (models.length === 0) throw invalid(where, 'is a zip archive with no TFLite model (.tflite) in it');
      if (models.length > 1) {
        throw invalid(where, `is a model bundle of ${models.length} models (${models.join(', ')}); name one after a '#', as '${where}#${models[0]}'`);
      }
      rest.push(...models[0].split('#'));
    }
    const name = rest.shift()!;
    const entry = entries.find((e) => e.name === name);
    if (!entry) {
      const models = modelsIn(entries, where, depth);
      throw invalid(where, `has no member '${name}' (its models: ${models.length ? models.join(', ') : 'none'})`);
    }
    if (entry.size > maxBytes) throw overLimit(`${where}#${name}`, `the member has ${entry.size} bytes, over the memory budget of ${maxBytes} bytes (--max-memory)`);
    cur = entry.read();
    where = `${where}#${name}`;
    // A TFLite file first: its metadata's associated files (labels) are a zip appended to the flatbuffer.
    if (isTfliteBytes(cur)) {
      if (rest.length > 0) throw invalid(where, `is a TFLite model, not a bundle: '${rest[0]}' cannot be in it`);
      return { bytes: cur, source: where };
    }
    if (!hasZipDirectory(cur)) throw invalid(where, rest.length > 0 ? `is not a bundle: '${rest[0]}' cannot be in it` : 'is not a TFLite model (no TFL3 identifier)');
    if (rest.length === 0 && !isModelBundle(cur, where)) throw invalid(where, 'is a zip archive with no TFLite model (.tflite) in it');
  }
}
