import { Controller, Get, Query } from '@nestjs/common';
import { AdminApi, AdminRoute, BAD_PAGE_QUERY, EXAMPLE_USER_ID } from '../admin/admin-api.decorator.js';
import { AuditQueryDto } from '../admin/admin-actions.dto.js';
import type { Page } from '../common/pagination.js';
import { AuditService, type AuditEntryView } from './audit.service.js';

/** The audit log: what operators changed, and why. */
@AdminApi('audit')
@Controller('admin/v1/audit')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  /** GET /admin/v1/audit: audit entries, newest first, paginated. */
  @AdminRoute({
    summary: 'The audit log: every destructive admin action with its reason, newest first',
    example: {
      chunk: [
        {
          id: '7',
          action: 'account.deactivate',
          target: EXAMPLE_USER_ID,
          reason: 'Spam reported by three users',
          detail: { rooms_left: ['!abc:example'], tokens_revoked: 2, devices_deleted: ['PHONE'] },
          created_at: '2026-11-30T18:29:19.273Z',
        },
      ],
      next_from: 'eyJrIjoiNyJ9',
    },
    errors: [BAD_PAGE_QUERY],
  })
  @Get()
  list(@Query() query: AuditQueryDto): Promise<Page<AuditEntryView>> {
    return this.audit.list(query);
  }
}
