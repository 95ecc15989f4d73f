// A plan's kernel choices (Plan.kernels, --tune's measured picks among a pointwise layer's kernel variants) put on the
// executor graph's nodes as the `kernelVariant` attribute (src/graph/ir.ts), which kernels/registry.ts honours. The
// choice is data on the node: the kernels stay functions of shapes and tiles, and a plan saved with its choices gives
// every session made from it the same programs.

import { type Graph, newAttrs } from '../graph/ir.js';
import type { Plan } from '../planner/plan.js';

/**
 * `g` with each node named in `kernels` carrying its variant. A name the graph lacks (a plan of another model or
 * another fusion) is left out with one line on stderr; whether the variant suits the node is the registry's call.
 */
export function applyKernelChoices(g: Graph, kernels: Plan['kernels']): Graph {
  if (!kernels || !Object.keys(kernels).length) return g;
  const names = new Set(g.nodes.map((n) => n.name));
  const missing = Object.keys(kernels).filter((n) => !names.has(n));
  if (missing.length) console.warn(`fcm-opt: note: ${g.source}: ${missing.length} kernel choice${missing.length > 1 ? 's' : ''} of the plan name${missing.length > 1 ? '' : 's'} no node of the graph (first '${missing[0]}'); left out`);
  return {
    ...g,
    nodes: g.nodes.map((n) => {
      const k = Object.hasOwn(kernels, n.name) ? kernels[n.name] : undefined;
      if (!k) return n;
      const attrs = newAttrs(n.attrs);
      attrs.kernelVariant = k.variant;
      return { ...n, attrs };
    }),
  };
}
