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
  strides?: number;
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
  dilations?: number;
  [extra: string]: unknown;
}

export type Dag = DagLayer[];
