import { AdminAuditEntity } from './admin-audit.entity.js';
import { AdminJobEntity } from './admin-job.entity.js';
import { RoomBlockEntity } from './room-block.entity.js';
import { AccountDocumentEntity } from './account-document.entity.js';
import { AccountStateSummaryEntity } from './account-state-summary.entity.js';
import { AccountStateEntity } from './account-state.entity.js';
import { AccountEntity } from './account.entity.js';
import { DhtSeqGuardEntity } from './dht-seq-guard.entity.js';
import { EnrollmentTokenEntity } from './enrollment-token.entity.js';
import { HomeNodeEntity } from './home-node.entity.js';
import { LoginTokenEntity } from './login-token.entity.js';
import { MatrixAccessTokenEntity } from './matrix-access-token.entity.js';
import { MatrixChangeHorizonEntity } from './matrix-change-horizon.entity.js';
import { MatrixChangeEntity } from './matrix-change.entity.js';
import { MatrixDeviceKeyEntity } from './matrix-device-key.entity.js';
import { MatrixFilterEntity } from './matrix-filter.entity.js';
import { MatrixMediaChunkEntity, MatrixMediaEntity } from './matrix-media.entity.js';
import { MatrixRoomEventEntity } from './matrix-room-event.entity.js';
import { OpEvidenceEntity } from './op-evidence.entity.js';
import { OpLogHeadEntity } from './op-log-head.entity.js';
import { OpEntity } from './op.entity.js';
import { PeerDeliveryEntity } from './peer-delivery.entity.js';
import {
  RoomEventAuthEntity,
  RoomEventEdgeEntity,
  RoomEventEntity,
  RoomForwardExtremityEntity,
  RoomMissingPrevEntity,
} from './room-event.entity.js';
import { RoomReceiptEntity } from './room-receipt.entity.js';
import {
  RoomCurrentStateDeltaEntity,
  RoomCurrentStateEntity,
  RoomMembershipEntity,
  RoomStateGroupEntity,
  RoomStateGroupEntryEntity,
} from './room-state.entity.js';
import { ForeignAccountDocumentEntity, RoomFanoutCursorEntity, RoomOutboxEntity } from './room-federation.entity.js';
import { RoomTxnEntity } from './room-txn.entity.js';
import {
  ToDeviceHeldEntity,
  ToDeviceInboxEntity,
  ToDeviceOutboxEntity,
  ToDeviceSeenEntity,
  ToDeviceStreamEntity,
} from './to-device.entity.js';
import { RoomEntity } from './room.entity.js';

export {
  AdminAuditEntity,
  AdminJobEntity,
  RoomBlockEntity,
  AccountDocumentEntity,
  AccountEntity,
  AccountStateEntity,
  AccountStateSummaryEntity,
  DhtSeqGuardEntity,
  EnrollmentTokenEntity,
  HomeNodeEntity,
  LoginTokenEntity,
  MatrixAccessTokenEntity,
  MatrixChangeEntity,
  MatrixChangeHorizonEntity,
  MatrixDeviceKeyEntity,
  MatrixFilterEntity,
  MatrixMediaChunkEntity,
  MatrixMediaEntity,
  MatrixRoomEventEntity,
  OpEntity,
  OpEvidenceEntity,
  OpLogHeadEntity,
  PeerDeliveryEntity,
  RoomCurrentStateDeltaEntity,
  RoomCurrentStateEntity,
  RoomEntity,
  RoomEventAuthEntity,
  RoomEventEdgeEntity,
  RoomEventEntity,
  RoomForwardExtremityEntity,
  RoomMembershipEntity,
  RoomMissingPrevEntity,
  RoomReceiptEntity,
  RoomStateGroupEntity,
  RoomStateGroupEntryEntity,
  RoomTxnEntity,
  RoomOutboxEntity,
  RoomFanoutCursorEntity,
  ForeignAccountDocumentEntity,
  ToDeviceHeldEntity,
  ToDeviceInboxEntity,
  ToDeviceOutboxEntity,
  ToDeviceSeenEntity,
  ToDeviceStreamEntity,
};
export type { AccountCustody, AccountStatus, DocumentEquivocation } from './account.entity.js';
export type { HomeRole } from './home-node.entity.js';
export type { MatrixDeviceKeyKind } from './matrix-device-key.entity.js';

/** Every entity of the schema; the DataSource and the drift check use this one list. */
export const ENTITIES = [
  HomeNodeEntity,
  AccountEntity,
  AccountDocumentEntity,
  OpEntity,
  OpEvidenceEntity,
  OpLogHeadEntity,
  AccountStateEntity,
  AccountStateSummaryEntity,
  PeerDeliveryEntity,
  EnrollmentTokenEntity,
  LoginTokenEntity,
  MatrixAccessTokenEntity,
  MatrixDeviceKeyEntity,
  MatrixChangeEntity,
  MatrixChangeHorizonEntity,
  MatrixRoomEventEntity,
  DhtSeqGuardEntity,
  MatrixFilterEntity,
  RoomEntity,
  RoomEventEntity,
  RoomEventEdgeEntity,
  RoomEventAuthEntity,
  RoomForwardExtremityEntity,
  RoomMissingPrevEntity,
  RoomStateGroupEntity,
  RoomStateGroupEntryEntity,
  RoomCurrentStateEntity,
  RoomCurrentStateDeltaEntity,
  RoomMembershipEntity,
  RoomTxnEntity,
  RoomOutboxEntity,
  RoomFanoutCursorEntity,
  ForeignAccountDocumentEntity,
  MatrixMediaEntity,
  MatrixMediaChunkEntity,
  AdminAuditEntity,
  AdminJobEntity,
  RoomBlockEntity,
  RoomReceiptEntity,
  ToDeviceInboxEntity,
  ToDeviceStreamEntity,
  ToDeviceSeenEntity,
  ToDeviceOutboxEntity,
  ToDeviceHeldEntity,
];
