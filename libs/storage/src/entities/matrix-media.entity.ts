import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';

/**
 * Media a home holds under an mxc URI (`mxc://<server_name>/<media_id>`): what it was uploaded as, and its size
 * once it has content (an URI reserved with `/create` has none until its upload, and `unused_expires_at`).
 * Local to this home. No foreign key to `account`: media fetched from homes of other accounts will be kept here
 * too, under their server names.
 */
@Entity({ name: 'matrix_media' })
@Index('matrix_media_uploader_idx', ['uploader'])
export class MatrixMediaEntity {
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'server_name', primaryKeyConstraintName: 'matrix_media_pkey' })
  serverName!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'media_id', primaryKeyConstraintName: 'matrix_media_pkey' })
  mediaId!: string;

  /** The uploader's user ID. */
  @Column({ type: 'varchar', length: 255 })
  uploader!: string;

  @Column({ type: 'varchar', length: 255, name: 'content_type' })
  contentType!: string;

  @Column({ type: 'varchar', length: 255, name: 'file_name', nullable: true })
  fileName!: string | null;

  /** Bytes of content (int8, read as text); null until the content is there. */
  @Column({ type: 'bigint', nullable: true })
  size!: string | null;

  @Column({ type: 'timestamptz', name: 'unused_expires_at', nullable: true })
  unusedExpiresAt!: Date | null;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;
}

/** One chunk of a media's content, in order by `seq` (chunks keep every query and row small). */
@Entity({ name: 'matrix_media_chunk' })
export class MatrixMediaChunkEntity {
  @PrimaryColumn({
    type: 'varchar',
    length: 255,
    name: 'server_name',
    primaryKeyConstraintName: 'matrix_media_chunk_pkey',
  })
  serverName!: string;

  @PrimaryColumn({
    type: 'varchar',
    length: 255,
    name: 'media_id',
    primaryKeyConstraintName: 'matrix_media_chunk_pkey',
  })
  mediaId!: string;

  @PrimaryColumn({ type: 'integer', primaryKeyConstraintName: 'matrix_media_chunk_pkey' })
  seq!: number;

  @Column({ type: 'bytea' })
  bytes!: Buffer;

  @ManyToOne(() => MatrixMediaEntity, { onDelete: 'CASCADE' })
  @JoinColumn([
    {
      name: 'server_name',
      referencedColumnName: 'serverName',
      foreignKeyConstraintName: 'matrix_media_chunk_media_fk',
    },
    { name: 'media_id', referencedColumnName: 'mediaId' },
  ])
  media?: Relation<MatrixMediaEntity>;
}
