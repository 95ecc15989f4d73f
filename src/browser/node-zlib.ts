// node:zlib in the browser build: only the Keras .keras reader inflates (its zip members); in the browser a Keras
// model comes as TF.js Layers model.json + shards instead.
import { unsupported } from '../errors.js';

export function inflateRawSync(): never {
  throw unsupported('.keras', 'Keras archives are read in Node; in the browser give the model as TF.js Layers (model.json and its shards)');
}
