// h5wasm in the browser build: absent (Keras .keras and .h5 files are read in Node); importing it says so.
import { unsupported } from '../errors.js';

throw unsupported('.h5', 'HDF5 (Keras .keras and .h5) is read in Node; in the browser give the model as TF.js Layers (model.json and its shards)');
