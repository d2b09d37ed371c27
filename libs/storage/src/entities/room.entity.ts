import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/**
 * A room this home holds events of, with its version (needed to read every event of it). Its row is also the
 * room's lock: `persistEvent` and `setCurrentState` take it `FOR UPDATE`, so the extremities and the current
 * state of one room change one transaction at a time.
 */
@Entity({ name: 'room' })
export class RoomEntity {
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'room_id' })
  roomId!: string;

  @Column({ type: 'varchar', length: 32, name: 'room_version' })
  roomVersion!: string;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;
}
