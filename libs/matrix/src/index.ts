export { MatrixClientApiModule } from './matrix.module.js';
export type { MatrixClientApiAsyncOptions } from './matrix.module.js';
export { MATRIX_HOME_PORT, MATRIX_OPTIONS, MATRIX_STORE } from './port.js';
export type {
  MatrixAccountState,
  MatrixClientApiOptions,
  MatrixHomePort,
  MatrixLocalChange,
  MatrixRoomVersion,
  MatrixStore,
  MatrixStoredKey,
  MatrixStoredToken,
} from './port.js';
export { MatrixError, UserInteractiveAuthRequired, matrixStatusOf } from './common/errors.js';
export type { MatrixErrcode } from './common/errors.js';
