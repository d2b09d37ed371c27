export { MatrixClientApiModule } from './matrix.module.js';
export { matrixHttp, CORS_HEADERS, skipMediaUploads } from './server/matrix-http.js';
export type { MatrixClientApiAsyncOptions } from './matrix.module.js';
export { MATRIX_HOME_PORT, MATRIX_OPTIONS, MATRIX_STORE } from './port.js';
export { INLINE_CONTENT_TYPES } from './media/media-names.js';
export { DEFAULT_MEDIA_MAX_BYTES } from './media/media-port.js';
export { MAX_RESERVED_MEDIA, UNUSED_MEDIA_TTL_MS } from './media/media.service.js';
export { MAX_THUMBNAIL_PIXELS, MAX_THUMBNAIL_SIDE } from './media/thumbnail.js';
export type {
  MatrixMediaInfo,
  MatrixMediaOptions,
  MatrixMediaPut,
  MatrixMediaStore,
  MatrixMediaUpload,
  MatrixRemoteMedia,
  MatrixRemoteMediaFetch,
} from './media/media-port.js';
export { DEVICE_KEY_LIMITS } from './keys/keys.service.js';
export { ChangeFeedService } from './sync/change-feed.service.js';
export type {
  MatrixAccountState,
  MatrixChanges,
  MatrixClientApiOptions,
  MatrixDeviceKeyCounts,
  MatrixDeviceKeyLimits,
  MatrixHomePort,
  MatrixKeyUpload,
  MatrixLocalChange,
  MatrixRemoteKeyClaim,
  MatrixRemoteKeyQuery,
  MatrixRemoteKeysPort,
  MatrixRoomVersion,
  MatrixStateRow,
  MatrixStore,
  MatrixStoredKey,
  MatrixStoredToken,
} from './port.js';
export { MatrixError, UserInteractiveAuthRequired, matrixStatusOf } from './common/errors.js';
export type { MatrixErrcode } from './common/errors.js';
export type {
  CreateRoomRequest,
  MatrixRoomsPort,
  MembershipAction,
  RoomActor,
  RoomEventView,
  RoomPage,
  RoomSyncEntry,
} from './rooms/rooms-port.js';
export { PRESENCE_STATES, RECEIPT_TYPES } from './ephemeral/ephemeral-port.js';
export type {
  EphemeralEvents,
  EphemeralPosition,
  MatrixEphemeralPort,
  PresenceState,
  PresenceView,
  ReceiptType,
} from './ephemeral/ephemeral-port.js';
export { MAX_SYNC_TO_DEVICE, MAX_TO_DEVICE_MESSAGES } from './to-device/to-device.service.js';
export type { MatrixToDevicePort, ToDeviceEvent, ToDeviceMessages } from './to-device/to-device-port.js';
