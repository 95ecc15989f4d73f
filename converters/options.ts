// Options every importer takes.
export interface ImportOptions {
  /** Value for a symbolic batch (first) dimension. Default 1. */
  batch?: number;
  /** Static shapes for inputs with symbolic dims other than batch: { x: [1, 3, 640, 640] }. */
  inputShapes?: Record<string, number[]>;
  /** Budget in bytes checked before any large allocation (default 4 GiB). */
  maxMemory?: number;
  /** Name used in error messages when the model is given as bytes. */
  source?: string;
}

export const defaultMaxMemory = 4 * 1024 ** 3;
