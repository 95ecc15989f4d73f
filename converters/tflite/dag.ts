// FusePlanner's layer DAG from a TFLite file, with the conventions of the FusePlanner reference's extractor
// (extract_tflite_model_metadata/extract_weights_and_fms.py, which wrote test/planner/fuseplanner-reference/dags/):
//
// - one layer per operator of subgraph 0, in file order; `id` = position; `name` = builtin name, lower case;
// - parents: for each input, in ascending tensor-index order (the FusePlanner reference sorts them), the operator whose first
//   output it is; children mirror parents (duplicates kept, as the FusePlanner reference keeps them);
// - CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED: ifms = input 0, weights = input 1 (the FusePlanner reference guesses the roles
//   from tensor order; the converter's order makes both agree). `type` dw (weights_shape [C, KH, KW]), pw
//   (1x1 kernel, [F, C]), s ([F, C, KH, KW]) or fc (the FusePlanner reference writes no weights_shape; we add [F, C]);
//   ifms/ofms shapes [C, H, W] for rank-4 inputs, else as in the file; `strides` = int(ifms W / ofms W),
//   computed from the shapes as the FusePlanner reference does (so a 1x1 stride-2 conv from 109 to 55 gets 1). When an
//   optional input (the bias) is absent the FusePlanner reference writes no input fields, no type and no shapes at all
//   ("has missing tensors"): the layer keeps only its output quantization;
// - other layers: ifms = the input with the highest tensor index (the FusePlanner reference's sorted[-1]: for RESHAPE that is
//   the shape tensor, for ADD the later-produced operand), NHWC shapes as in the file, ifms scale and zero
//   point 1.0 / 0 unless the tensor has exactly one of each; PAD layers add padding_top/bottom/left/right from
//   the paddings constant (input 1; the FusePlanner reference finds it by the tensor name 'paddings'); MEAN gets type 'avgpool';
// - ofms_scales / ofms_zero_points only when the output has exactly one scale / zero point. Conv layers with
//   an unquantized input (float models, which the FusePlanner reference does not handle) get 1.0 / 0 like other layers;
// - `activation`: the fused activation ('RELU', 'RELU6', 'RELU_N1_TO_1', 'TANH'; '0' for none), and 'RELU' /
//   'RELU6' for those ops. (The FusePlanner reference looks for 'relu6' / 'relu' in the output tensor's name, which the
//   converter derives from the same activation.)
// fcm-opt's additions, which the FusePlanner reference's planner ignores: `pads` [top, left, bottom, right] and `dilations`
// of conv layers, computed from SAME/VALID like the importer.

import type { Dag, DagLayer } from '../../src/planner/dag.js';
import { defaultMaxMemory, type ImportOptions } from '../options.js';
import { builtinCodeOf, opNameOf, readTfliteInput } from './import.js';
import {
  ActivationFunctionType, AddOptions, BuiltinOperator, BuiltinOptions, ConcatenationOptions, Conv2DOptions,
  DepthwiseConv2DOptions, FullyConnectedOptions, type Model, MulOptions, type Operator, Padding, Pool2DOptions, SubOptions,
} from './schema_generated.js';
import { bufferBytes, openModel } from './verify.js';

/** The FusePlanner-format DAG of a TFLite model (path or bytes). Verifies the file first. */
export async function tfliteDagFromFile(input: string | Uint8Array, opts: ImportOptions = {}): Promise<Dag> {
  const { bytes, source } = await readTfliteInput(input, opts);
  const m = openModel(bytes, source, opts.maxMemory ?? defaultMaxMemory);
  return dagFromModel(m, bytes);
}

function fusedActivation(op: Operator, code: number): ActivationFunctionType {
  const t = op.builtinOptionsType();
  // A union type without its table reads as null: TFLite then takes the defaults (no fused activation).
  const get = () => {
    switch (t) {
      case BuiltinOptions.Conv2DOptions: return (op.builtinOptions(new Conv2DOptions()) as Conv2DOptions | null)?.fusedActivationFunction() ?? ActivationFunctionType.NONE;
      case BuiltinOptions.DepthwiseConv2DOptions: return (op.builtinOptions(new DepthwiseConv2DOptions()) as DepthwiseConv2DOptions | null)?.fusedActivationFunction() ?? ActivationFunctionType.NONE;
      case BuiltinOptions.Pool2DOptions: return (op.builtinOptions(new Pool2DOptions()) as Pool2DOptions | null)?.fusedActivationFunction() ?? ActivationFunctionType.NONE;
      case BuiltinOptions.FullyConnectedOptions: return (op.builtinOptions(new FullyConnectedOptions()) as FullyConnectedOptions | null)?.fusedActivationFunction() ?? ActivationFunctionType.NONE;
      case BuiltinOptions.AddOptions: return (op.builtinOptions(new AddOptions()) as AddOptions | null)?.fusedActivationFunction() ?? ActivationFunctionType.NONE;
      case BuiltinOptions.SubOptions: return (op.builtinOptions(new SubOptions()) as SubOptions | null)?.fusedActivationFunction() ?? ActivationFunctionType.NONE;
      case BuiltinOptions.MulOptions: return (op.builtinOptions(new MulOptions()) as MulOptions | null)?.fusedActivationFunction() ?? ActivationFunctionType.NONE;
      case BuiltinOptions.ConcatenationOptions: return (op.builtinOptions(new ConcatenationOptions()) as ConcatenationOptions | null)?.fusedActivationFunction() ?? ActivationFunctionType.NONE;
      default: return ActivationFunctionType.NONE;
    }
  };
  if (code === BuiltinOperator.RELU) return ActivationFunctionType.RELU;
  if (code === BuiltinOperator.RELU6) return ActivationFunctionType.RELU6;
  return get();
}

export function dagFromModel(m: Model, bytes: Uint8Array): Dag {
  const sg = m.subgraphs(0)!;
  const shapeOf = (t: number) => {
    const tensor = sg.tensors(t)!;
    const s: number[] = [];
    for (let i = 0; i < tensor.shapeLength(); i++) s.push(tensor.shape(i)!);
    return s;
  };
  /** The FusePlanner reference's scalar quantization: the value when there is exactly one, else undefined. */
  const quantOf = (t: number): { scale?: number; zp?: number } => {
    const q = sg.tensors(t)!.quantization();
    if (!q) return {};
    return {
      scale: q.scaleLength() === 1 ? q.scale(0)! : undefined,
      zp: q.zeroPointLength() === 1 ? Number(q.zeroPoint(0)!) : undefined,
    };
  };
  const producer = new Map<number, number>();
  const dag: Dag = [];
  for (let id = 0; id < sg.operatorsLength(); id++) {
    const op = sg.operators(id)!;
    const code = builtinCodeOf(m, op.opcodeIndex());
    const ins: number[] = [], outs: number[] = [];
    for (let i = 0; i < op.inputsLength(); i++) ins.push(op.inputs(i)!);
    for (let i = 0; i < op.outputsLength(); i++) outs.push(op.outputs(i)!);
    const act = fusedActivation(op, code);
    // Built field by field like the FusePlanner reference: a layer whose conv inputs are incomplete has no shapes at all,
    // and MEAN carries type 'avgpool', which DagLayer's ConvType does not list.
    const layer = {
      name: opNameOf(m, op.opcodeIndex()),
      id,
      activation: act === ActivationFunctionType.NONE ? '0' : (ActivationFunctionType[act] ?? String(act)),
      parents: [],
      children: [],
    } as unknown as DagLayer;
    // Reordered below to the FusePlanner reference's key order; id and name first.
    const out = outs[0];
    if (out !== undefined) producer.set(out, id);
    for (const t of [...ins].sort((a, b) => a - b)) {
      const p = producer.get(t);
      if (p !== undefined && p !== id) {
        layer.parents.push(p);
        dag[p].children.push(id);
      }
    }
    const isConv = code === BuiltinOperator.CONV_2D || code === BuiltinOperator.DEPTHWISE_CONV_2D;
    if (isConv || code === BuiltinOperator.FULLY_CONNECTED) {
      const complete = ins.length >= 3 && ins.every((t) => t >= 0) && out !== undefined;
      if (complete) {
        const [x, w] = ins;
        const q = quantOf(x);
        layer.ifms_scales = q.scale ?? 1.0;
        layer.ifms_zero_points = q.zp ?? 0;
        const ws = shapeOf(w), xs = shapeOf(x), ys = shapeOf(out);
        if (code === BuiltinOperator.DEPTHWISE_CONV_2D) {
          layer.type = 'dw';
          layer.weights_shape = [ws[3], ws[1], ws[2]];
        } else if (code === BuiltinOperator.FULLY_CONNECTED) {
          layer.type = 'fc';
          layer.weights_shape = [...ws];
        } else if (ws[1] === 1 && ws[2] === 1) {
          layer.type = 'pw';
          layer.weights_shape = [ws[0], ws[3]];
        } else {
          layer.type = 's';
          layer.weights_shape = [ws[0], ws[3], ws[1], ws[2]];
        }
        if (xs.length === 4 && ys.length === 4) {
          layer.ifms_shape = [xs[3], xs[1], xs[2]];
          layer.ofms_shape = [ys[3], ys[1], ys[2]];
        } else {
          layer.ifms_shape = xs;
          layer.ofms_shape = ys;
        }
        const last = (s: number[]) => (s.length > 0 ? s[s.length - 1] : 1);
        const ow = last(layer.ofms_shape);
        layer.strides = ow > 0 ? Math.trunc(last(layer.ifms_shape) / ow) : 0;
        if (isConv && xs.length === 4 && ws.length === 4) {
          const o = code === BuiltinOperator.CONV_2D
            ? op.builtinOptions(new Conv2DOptions()) as Conv2DOptions | null
            : op.builtinOptions(new DepthwiseConv2DOptions()) as DepthwiseConv2DOptions | null;
          if (o) {
            const pads = samePads(o.padding(), xs[1], ws[1], o.strideH(), o.dilationHFactor(), xs[2], ws[2], o.strideW(), o.dilationWFactor());
            layer.pads = pads;
            layer.dilations = o.dilationHFactor();
          }
        }
      }
    } else {
      if (code === BuiltinOperator.PAD && ins.length >= 2 && ins[1] >= 0) {
        const p = intData(m, sg.tensors(ins[1])!, bytes);
        if (p && p.length >= 6) {
          layer.padding_top = p[2];
          layer.padding_bottom = p[3];
          layer.padding_left = p[4];
          layer.padding_right = p[5];
        }
      }
      const present = ins.filter((t) => t >= 0);
      if (present.length > 0) {
        const x = present.reduce((a, b) => Math.max(a, b));
        const q = quantOf(x);
        layer.ifms_scales = q.scale ?? 1.0;
        layer.ifms_zero_points = q.zp ?? 0;
        layer.ifms_shape = shapeOf(x);
        if (out !== undefined) layer.ofms_shape = shapeOf(out);
      }
    }
    if (out !== undefined) {
      const q = quantOf(out);
      if (q.scale !== undefined) layer.ofms_scales = q.scale;
      if (q.zp !== undefined) layer.ofms_zero_points = q.zp;
    }
    if (code === BuiltinOperator.MEAN) (layer as Record<string, unknown>).type = 'avgpool';
    dag.push(layer);
  }
  return dag.map(seedKeyOrder);
}

function samePads(padding: Padding, h: number, kh: number, sh: number, dh: number, w: number, kw: number, sw: number, dw: number): number[] {
  const one = (i: number, k: number, s: number, d: number): [number, number] => {
    if (padding === Padding.VALID || s < 1) return [0, 0];
    const o = Math.ceil(i / s);
    const total = Math.max((o - 1) * s + (k - 1) * Math.max(d, 1) + 1 - i, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  };
  const [t, b] = one(h, kh, sh, dh);
  const [l, r] = one(w, kw, sw, dw);
  return [t, l, b, r];
}

function intData(m: Model, t: NonNullable<ReturnType<NonNullable<ReturnType<Model['subgraphs']>>['tensors']>>, bytes: Uint8Array): number[] | null {
  const raw = bufferBytes(m, t.buffer(), bytes);
  if (raw.length === 0) return null;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: number[] = [];
  // PAD takes int32 or int64 paddings (TensorType 2 / 4).
  if (t.type() === 2) for (let i = 0; i + 4 <= raw.length; i += 4) out.push(view.getInt32(i, true));
  else if (t.type() === 4) for (let i = 0; i + 8 <= raw.length; i += 8) out.push(Number(view.getBigInt64(i, true)));
  else return null;
  return out;
}

const keyOrder = [
  'name', 'id', 'activation', 'parents', 'children', 'padding_top', 'padding_bottom', 'padding_left', 'padding_right',
  'ifms_scales', 'ifms_zero_points', 'type', 'weights_shape', 'ifms_shape', 'ofms_shape', 'strides',
  'ofms_scales', 'ofms_zero_points', 'pads', 'dilations',
];

/** The FusePlanner reference's key order (MEAN's late `type` aside), so written files diff cleanly against its DAGs. */
function seedKeyOrder(l: DagLayer): DagLayer {
  const o: Record<string, unknown> = {};
  for (const k of keyOrder) if (l[k] !== undefined) o[k] = l[k];
  for (const k of Object.keys(l)) if (!(k in o)) o[k] = l[k];
  return o as DagLayer;
}
