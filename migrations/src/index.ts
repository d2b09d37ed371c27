import type { MigrationInterface } from 'typeorm';
import { Initial1795515229364 } from './1795515229364-Initial.js';
import { ReplicatedState1795516075902 } from './1795516075902-ReplicatedState.js';
import { OpLogHead1795517405285 } from './1795517405285-OpLogHead.js';
import { Hosting1795518359777 } from './1795518359777-Hosting.js';
import { MatrixClientApi1795519166001 } from './1795519166001-MatrixClientApi.js';
import { DhtSeqGuard1795520000000 } from './1795520000000-DhtSeqGuard.js';
import { MatrixChangeBounds1795520500000 } from './1795520500000-MatrixChangeBounds.js';
import { DocumentEquivocation1795521000000 } from './1795521000000-DocumentEquivocation.js';
import { MatrixFilter1795521500000 } from './1795521500000-MatrixFilter.js';
import { RoomStorage1795522000000 } from './1795522000000-RoomStorage.js';
import { MatrixMedia1795522500000 } from './1795522500000-MatrixMedia.js';
import { RoomReceipts1795523000000 } from './1795523000000-RoomReceipts.js';
import { AdminAudit1795523200000 } from './1795523200000-AdminAudit.js';
import { RoomFederation1795523500000 } from './1795523500000-RoomFederation.js';
import { ToDevice1795524300000 } from './1795524300000-ToDevice.js';
import { ToDeviceBounds1795524400000 } from './1795524400000-ToDeviceBounds.js';
import { StateSummary1795524600000 } from './1795524600000-StateSummary.js';
import { AdminJob1795524700000 } from './1795524700000-AdminJob.js';
import { DocumentHomesIndex1795524800000 } from './1795524800000-DocumentHomesIndex.js';
import { AccountMigration1795525100000 } from './1795525100000-AccountMigration.js';
import { RoomBlock1795525260000 } from './1795525260000-RoomBlock.js';

/** Every migration, oldest first. Classes, not file globs, so the list is the same in every runtime. */
export const MIGRATIONS: Array<new () => MigrationInterface> = [
  Initial1795515229364,
  ReplicatedState1795516075902,
  OpLogHead1795517405285,
  Hosting1795518359777,
  MatrixClientApi1795519166001,
  DhtSeqGuard1795520000000,
  MatrixChangeBounds1795520500000,
  DocumentEquivocation1795521000000,
  MatrixFilter1795521500000,
  RoomStorage1795522000000,
  MatrixMedia1795522500000,
  RoomReceipts1795523000000,
  AdminAudit1795523200000,
  RoomFederation1795523500000,
  ToDevice1795524300000,
  ToDeviceBounds1795524400000,
  StateSummary1795524600000,
  AdminJob1795524700000,
  DocumentHomesIndex1795524800000,
  AccountMigration1795525100000,
  RoomBlock1795525260000,
];
