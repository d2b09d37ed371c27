import { Injectable } from '@nestjs/common';
import type { AdminAuditInput, AdminAuditRecord, SqlAdminStore } from '@polyhome/storage';
import { ApiError } from '../common/api-error.js';
import { decodeCursor, pageOfRows, type Page } from '../common/pagination.js';
import { InjectRepository } from '../storage/storage.module.js';
import type { AuditQueryDto } from '../admin/admin-actions.dto.js';

/** An audit entry as the admin API shows it. */
export interface AuditEntryView {
  id: string;
  action: string;
  target: string;
  reason: string;
  detail: Record<string, unknown>;
  created_at: string;
}

/** The audit log of the admin API: every destructive action with the reason its operator gave. */
@Injectable()
export class AuditService {
  constructor(@InjectRepository('admin') private readonly store: SqlAdminStore) {}

  /** Appends an entry (after the action it records succeeded). */
  async record(entry: AdminAuditInput): Promise<AuditEntryView> {
    return viewOf(await this.store.recordAudit(entry));
  }

  /** Entries, newest first, a page at a time (the cursor is the last entry's id). */
  async list(query: AuditQueryDto): Promise<Page<AuditEntryView>> {
    const before = query.from === undefined ? undefined : decodeCursor(query.from);
    if (before !== undefined && !/^[1-9][0-9]{0,18}$/.test(before)) {
      throw new ApiError('M_INVALID_PARAM', 'from is not a next_from value from a previous page.');
    }
    const rows = await this.store.auditPage({ before, limit: query.limit + 1, target: query.target });
    return pageOfRows(rows, query.limit, viewOf, (e) => e.id);
  }
}

function viewOf(row: AdminAuditRecord): AuditEntryView {
  return {
    id: row.id,
    action: row.action,
    target: row.target,
    reason: row.reason,
    detail: row.detail,
    created_at: row.createdAt.toISOString(),
  };
}
