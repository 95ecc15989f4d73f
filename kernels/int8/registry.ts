// Which integer kernel runs a node of an int8 / uint8 graph (the counterpart of kernels/registry.ts). The runtime
// calls int8KernelFor with the node, the IR tensors of its inputs and outputs (quantization and constant data),
// the device limits, whether WGSL offers packed_4x8_integer_dot_product, and for FCMs the intermediate tensor.
// Reshape-like ops stay aliases (kernels/registry.ts aliasOps); anything else is refused per node.

import { fcmDomain, type Tensor } from '../../src/graph/ir.js';
import { unsupported } from '../../src/errors.js';
import { convGeom, isDepthwise, isPointwise } from '../conv-common.js';
import { where } from '../shader.js';
import { type Int8KernelArgs, type Int8Program, shapeArgs } from './common.js';
import { int8Conv } from './conv.js';
import { int8Depthwise } from './depthwise.js';
import { int8Pointwise } from './pointwise.js';
import { int8FullyConnected } from './fc.js';
import { int8Activation, int8Binary, int8Requantize } from './elementwise.js';
import { int8Pool } from './pool.js';
import { int8Mean } from './mean.js';
import { int8Pad } from './pad.js';
import { int8Concat } from './concat.js';
import { int8Softmax } from './softmax.js';
import { int8FusedDwPw, int8FusedPwDw, int8FusedPwPw } from './fused.js';

export function int8KernelFor(args: Int8KernelArgs & { intermediate?: Tensor }, domain = ''): Int8Program {
  const w = where(args);
  if (domain === fcmDomain) {
    if (!args.intermediate) throw unsupported(w, 'an integer FCM needs its intermediate tensor (for its quantization)');
    const a = { ...args, intermediate: args.intermediate };
    switch (args.node.op) {
      case 'FusedPwDw': return int8FusedPwDw(a);
      case 'FusedDwPw': return int8FusedDwPw(a);
      case 'FusedPwPw': return int8FusedPwPw(a);
    }
    throw unsupported(w, `no integer kernel for fused op '${args.node.op}'`);
  }
  if (domain !== '' && domain !== 'ai.onnx') throw unsupported(w, `no integer kernel for op '${domain}.${args.node.op}'`);
  switch (args.node.op) {
    case 'Conv': {
      const g = convGeom(shapeArgs(args));
      return isPointwise(g) ? int8Pointwise(args) : isDepthwise(g) ? int8Depthwise(args) : int8Conv(args);
    }
    case 'Gemm': return int8FullyConnected(args);
    case 'Add': case 'Sub': case 'Mul': return int8Binary(args);
    case 'Relu': case 'Clip': return int8Activation(args);
    case 'QuantizeLinear': return int8Requantize(args);
    case 'AveragePool': case 'MaxPool': return int8Pool(args);
    case 'ReduceMean': case 'GlobalAveragePool': return int8Mean(args);
    case 'Pad': return int8Pad(args);
    case 'Concat': return int8Concat(args);
    case 'Softmax': return int8Softmax(args);
  }
  throw unsupported(w, `no integer kernel for ${args.node.op}`);
}
