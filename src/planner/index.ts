// The planner's entry point: a FusePlanner layer DAG and a GPU description in, a Plan out.
//   'fuseplanner': the FusePlanner reference's cost models and decisions, reproduced exactly (src/planner/fuseplanner/).
//   'optimal'    : fcm-opt's own planner (src/planner/optimal.ts): legal, disjoint modules chosen optimally.
import type { Dag } from './dag.js';
import type { HwConfig } from './hw-config.js';
import type { Plan } from './plan.js';
import { planFusePlanner } from './fuseplanner/plan.js';
import { planOptimal } from './optimal.js';
import { invalid } from '../errors.js';

export type PlanMode = Plan['mode'];
export const planModes: readonly PlanMode[] = ['optimal', 'fuseplanner'];

export interface PlanFusionOptions {
  mode: PlanMode;
  /** Bytes per element of activations and weights (optimal mode; the FusePlanner reference's models count elements). */
  dtypeBytes?: number;
  /** optimal mode: bytes per element of a tile in workgroup memory (default dtypeBytes; fp16 kernels stage f32 tiles). */
  tileBytes?: number;
  /** Name recorded in the plan (the model or DAG file). */
  model?: string;
  /** optimal mode: images per inference, for the time estimates (default 1). */
  batch?: number;
  /** optimal mode: pairs to leave unfused (`${first}:${second}` layer ids; see tunePlan). */
  exclude?: ReadonlySet<string>;
}

export function planFusion(dag: Dag, hw: HwConfig, options: PlanFusionOptions): Plan {
  const model = options.model ?? 'model';
  switch (options.mode) {
    case 'fuseplanner':
      return planFusePlanner(dag, hw, model);
    case 'optimal':
      return planOptimal(dag, hw, { model, dtypeBytes: options.dtypeBytes, tileBytes: options.tileBytes, exclude: options.exclude, batch: options.batch });
    default:
      // The type allows only planModes; JavaScript callers (the library API) can pass anything.
      throw invalid(model, `unknown planning mode '${String(options.mode)}' (${planModes.join(', ')})`);
  }
}
