// FusePlanner's layer DAG (`model_dag.json`), as the FusePlanner reference's extractor writes it.
// See test/planner/fuseplanner-reference/README.md. Conv layers carry `type`; every layer carries its id
// (= position in the list, topological order) and parents/children by id.

export type ConvType = 's' | 'dw' | 'pw' | 'fc';

export interface DagLayer {
  id: number;
  /** TFLite DAGs: the builtin op name in lower case (FusePlanner convention). ONNX DAGs: the node's name. */
  name: string;
  /** ONNX DAGs only: the IR op type (Conv, Add, ...), so tools can tell ops apart when names are free text. */
  op?: string;
  parents: number[];
  children: number[];
  /** '0' for none; 'RELU', 'RELU6', or upper-case names of others (HARDSWISH, SIGMOID, ...). */
  activation: string;
  /** Conv layers: [C, H, W]. Other layers: the tensor shape as the source has it. */
  ifms_shape: number[];
  ofms_shape: number[];
  /** Conv layers: their ConvType. The FusePlanner reference's TFLite DAGs also type MEAN layers 'avgpool'. */
  type?: ConvType | 'avgpool';
  /** s: [F, C, K, K]; dw: [C, K, K]; pw: [F, C]; fc: [F, C]. */
  weights_shape?: number[];
  /**
   * The FusePlanner reference's form is one number for both axes. fcm-opt writes [sH, sW] when they differ
   * (PaddleOCR's strides [2, 1]); read it with strideHW.
   */
  strides?: number | number[];
  padding_top?: number;
  padding_bottom?: number;
  padding_left?: number;
  padding_right?: number;
  ifms_scales?: number;
  ifms_zero_points?: number;
  ofms_scales?: number;
  ofms_zero_points?: number;
  /** fcm-opt's own additions (the FusePlanner reference ignores unknown keys): IR node names this layer stands for. */
  nodes?: string[];
  /** fcm-opt's: the model returns this layer's output (to-dag.ts); nothing fuses through it. */
  model_output?: boolean;
  /** fcm-opt's, Pad layers: whether it pads only H and W, with zeros (fusion-rules.ts spatialZeroPads). */
  spatial_zero_pad?: boolean;
  /** Real padding [top, left, bottom, right] and dilation of conv layers, for the optimal planner. */
  pads?: number[];
  /** One number for both axes, or [dH, dW] when they differ (read it with dilationHW). */
  dilations?: number | number[];
  [extra: string]: unknown;
}

export type Dag = DagLayer[];

/** [H, W] of a field that is one number for both axes (the FusePlanner reference's form) or [H, W]; `fallback` when absent. */
function perAxis(v: number | number[] | undefined, fallback: number): [number, number] {
  if (v === undefined) return [fallback, fallback];
  if (typeof v === 'number') return [v, v];
  return [v[0], v[1]];
}

/** A conv layer's stride along H and W (1 when absent). */
export const strideHW = (l: DagLayer): [number, number] => perAxis(l.strides, 1);

/** A conv layer's dilation along H and W (1 when absent). */
export const dilationHW = (l: DagLayer): [number, number] => perAxis(l.dilations, 1);

/** The DAG form of a per-axis value: one number when both axes agree (as the FusePlanner reference writes it), else [H, W]. */
export const axisField = (h: number, w: number): number | number[] => (h === w ? h : [h, w]);

/**
 * An 'fc' layer's weights [F, C]. The FusePlanner reference's extractor writes fc layers without weights_shape
 * (its planner estimates no fc layer), with the shapes as the file has them ([N, C] -> [N, F]); fcm-opt's own
 * DAGs write [C, rows, 1] -> [F, rows, 1] and the weights. Without weights_shape, C and F come from the shapes:
 * the first dimension of a [C, rows, 1] shape, else the last (the channel axis of the file's layout).
 * Undefined when neither is there.
 */
export function fcWeightsShape(l: DagLayer): number[] | undefined {
  if (l.weights_shape) return l.weights_shape;
  const x = l.ifms_shape, y = l.ofms_shape;
  if (!x || !y || x.length === 0 || y.length === 0) return undefined;
  const channels = (s: number[]) => (s.length === 3 && s[2] === 1 && x.length === 3 && y.length === 3 ? s[0] : s[s.length - 1]);
  return [channels(y), channels(x)];
}
