// loadModel: any supported model file (or its bytes) to a prepared graph IR with every shape static.
// ONNX: importOnnx + prepareGraph; shapes the IR cannot infer past opaque ops come from onnxruntime-node
// (src/graph/ort-shapes.ts), then the graph is prepared again with them so that shape chains past those
// ops fold too.
import { extname } from 'node:path';
import { invalid, unsupported } from '../errors.js';
import { budgetFor, maxMessageBytes, readInputFile } from '../input-file.js';
import type { Graph, Tensor } from './ir.js';
import { isKnownOp } from './ir.js';
import { ortShapes } from './ort-shapes.js';
import { prepareGraph } from './prepare.js';
import { unknownTensors } from './shape.js';
import { importOnnx } from '../../converters/onnx/import.js';
import { importTflite } from '../../converters/tflite/import.js';
import { importKeras, looksLikeTfjsJson } from '../../converters/keras/import.js';
import { importKerasFile, isHdf5 } from '../../converters/keras/archive.js';
import { isModelBundle, openBundle, splitMemberPath } from '../../converters/bundle.js';
import { hasZipDirectory, isZip } from '../../converters/zip.js';
import { defaultMaxMemory, type ImportOptions } from '../../converters/options.js';

export type ModelFormat = 'onnx' | 'tflite' | 'keras';

/** Keras's own files (Keras 3 .keras zip, legacy .h5) load through converters/keras/archive.ts; their format is 'keras'. */
const kerasFileExts = new Set(['.keras', '.h5', '.hdf5']);

/** TFLite flatbuffers carry the identifier "TFL3" at bytes 4..8; ONNX protobufs have no magic. */
export function detectFormat(input: string | Uint8Array, head?: Uint8Array): ModelFormat {
  if (typeof input === 'string') {
    const ext = extname(input).toLowerCase();
    if (ext === '.onnx') return 'onnx';
    if (ext === '.tflite') return 'tflite';
    if (kerasFileExts.has(ext)) return 'keras';
  }
  const b = typeof input === 'string' ? head : input;
  if (b && b.length >= 8 && String.fromCharCode(b[4], b[5], b[6], b[7]) === 'TFL3') return 'tflite';
  // Keras: a TF.js model.json (JSON with a modelTopology, Layers or graph; a FusePlanner layer DAG .json has none), a
  // Keras 3 .keras archive (zip) or a legacy Keras .h5 (HDF5).
  if (b && (looksLikeTfjsJson(b) || isZip(b) || isHdf5(b))) return 'keras';
  return 'onnx';
}

/**
 * A model file's bytes and its name in messages. A model bundle (a MediaPipe Tasks .task zip: converters/bundle.ts)
 * gives the bytes of the member named after a '#' in the path (`pose_landmarker.task#pose_detector.tflite`), or of
 * its only model (`bundled`); any other file its own bytes.
 */
export async function readModelFile(path: string, opts: Pick<ImportOptions, 'maxMemory' | 'source'> = {}): Promise<{ bytes: Uint8Array; source: string; bundled: boolean }> {
  const { file, members } = splitMemberPath(path);
  const maxMemory = opts.maxMemory ?? defaultMaxMemory;
  const source = opts.source ?? file;
  const bytes = await readInputFile(file, { source, ...budgetFor(maxMemory, maxMessageBytes, 'model') });
  if (members.length > 0 && !hasZipDirectory(bytes)) throw invalid(source, `is not a model bundle (zip): '${members[0]}' cannot be in it`);
  return members.length > 0 || isModelBundle(bytes, source) ? { ...openBundle(bytes, source, members, maxMemory), bundled: true } : { bytes, source, bundled: false };
}

/** Whether a path names a model bundle or a member of one (its bytes are read to tell). */
const bundlePath = (path: string) => extname(path).toLowerCase() === '.task' || splitMemberPath(path).members.length > 0;

export async function loadModel(input: string | Uint8Array, opts: ImportOptions = {}): Promise<Graph> {
  if (typeof input === 'string' && bundlePath(input)) {
    const m = await readModelFile(input, opts);
    return loadModel(m.bytes, { ...opts, source: m.source });
  }
  if (typeof input !== 'string' && isModelBundle(input, opts.source)) {
    const m = openBundle(input, opts.source ?? '<bytes>', [], opts.maxMemory ?? defaultMaxMemory);
    return loadModel(m.bytes, { ...opts, source: m.source });
  }
  const source = opts.source ?? (typeof input === 'string' ? input : '<bytes>');
  let bytes: Uint8Array | undefined = typeof input === 'string' ? undefined : input;
  if (typeof input === 'string' && !['.onnx', '.tflite'].includes(extname(input).toLowerCase())) {
    // Read once to tell the format by its bytes: through the gate, as every model file.
    bytes = await readInputFile(input, { source, ...budgetFor(opts.maxMemory ?? defaultMaxMemory, maxMessageBytes, 'model') });
    if (isModelBundle(bytes, source)) {
      const m = openBundle(bytes, source, [], opts.maxMemory ?? defaultMaxMemory);
      return loadModel(m.bytes, { ...opts, source: m.source });
    }
  }
  const format = detectFormat(input, bytes);
  if (format === 'keras') {
    // Shapes are static once the inputs are; shards are read next to the model.json.
    const data = typeof input === 'string' ? input : bytes!;
    const kerasFile = typeof input === 'string' ? kerasFileExts.has(extname(input).toLowerCase()) || (!!bytes && (isZip(bytes) || isHdf5(bytes))) : isZip(input) || isHdf5(input);
    // .keras and .h5 are self-contained: the bytes already read are enough. A model.json needs its folder for the shards.
    const g = prepareGraph(await (kerasFile ? importKerasFile(bytes ?? data, { ...opts, source }) : importKeras(data, { ...opts, source })), opts);
    const left = unknownTensors(g);
    if (left.length > 0) throw unsupported(source, `cannot determine the shapes of ${left.length} tensors (first: '${left[0]}')`);
    return g;
  }
  if (format === 'tflite') {
    // TFLite shapes are static in the file; nothing for onnxruntime to fill in.
    const g = prepareGraph(await importTflite(input, { ...opts, source }), opts);
    const left = unknownTensors(g);
    if (left.length > 0) throw unsupported(source, `cannot determine the shapes of ${left.length} tensors past opaque ops (first: '${left[0]}')`);
    return g;
  }
  // A path goes to the importer as a path: external tensor data is read relative to its folder.
  const raw = await importOnnx(input, { ...opts, source });
  const prepared = prepareGraph(raw, opts);
  const unknown = unknownTensors(prepared);
  if (unknown.length === 0) return prepared;

  if (!bytes) bytes = await readInputFile(input as string, { source, ...budgetFor(opts.maxMemory ?? defaultMaxMemory, maxMessageBytes, 'ONNX (protobuf)') });
  // The outputs of the opaque nodes too, by their names in the file: passes may rename a tensor (an Identity
  // removed in front of a graph output), and shape inference starts again from the file's graph.
  const opaque = raw.nodes.filter((n) => !isKnownOp(n)).flatMap((n) => n.outputs.filter((y) => y));
  const found = await ortShapes(bytes, raw, [...new Set([...unknown, ...opaque])]);
  const tensors = new Map(raw.tensors);
  for (const [name, s] of found) {
    const t: Tensor = { ...(tensors.get(name) ?? { name }), name, dtype: s.dtype, shape: s.shape, shapeUnknown: false };
    tensors.set(name, t);
  }
  const again = prepareGraph({ ...raw, tensors }, opts);
  const left = unknownTensors(again);
  if (left.length > 0) throw unsupported(source, `cannot determine the shapes of ${left.length} tensors (first: '${left[0]}')`);
  return again;
}
