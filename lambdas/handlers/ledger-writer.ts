import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { CustodyEvent } from '../core/custody';
import { logger } from '../observability';
import { appendCustodyEvents } from '../store/ledger';
import { lambdaHandler } from './middleware';

/**
 * Appends custody events to the ledger, a batch at a time: SQS records from the ledger queue (which the custody
 * bus rule feeds; body = the EventBridge envelope) and from the custody fallback queue (body = the detail or a
 * whole envelope). A batch's events of one key go in one block. Failed records are returned for SQS to redeliver
 * (then its dead-letter queue). Deliveries are at-least-once and in any order: the ledger records each request once.
 */
async function appendBatch(event: SQSEvent): Promise<SQSBatchResponse> {
  const failed: string[] = [];
  const valid: { messageId: string; event: CustodyEvent }[] = [];
  for (const r of event.Records) {
    const parsed = custodyEventOf(r.body);
    if (parsed) valid.push({ messageId: r.messageId, event: parsed });
    else failed.push(r.messageId);
  }
  const results = await Promise.allSettled(appendCustodyEvents(valid.map((v) => v.event)));
  results.forEach((r, i) => {
    const { messageId, event: e } = valid[i];
    if (r.status === 'fulfilled') {
      logger.debug('custody event recorded', { requestId: e.request_id, keyId: r.value.key_id, seq: r.value.seq, status: r.value.status });
      return;
    }
    logger.error('custody event not recorded yet; it will be retried', { requestId: e.request_id, keyId: e.key_id, error: (r.reason as Error).message });
    failed.push(messageId);
  });
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
}

/** The record's custody event, or undefined (logged: it is returned as failed, so it ends in the dead-letter queue). */
function custodyEventOf(body: string): CustodyEvent | undefined {
  let detail: unknown;
  try {
    const parsed: unknown = JSON.parse(body);
    const envelope = parsed as { 'detail-type'?: unknown; detail?: unknown };
    detail = typeof envelope['detail-type'] === 'string' && 'detail' in envelope ? envelope.detail : parsed;
  } catch {
    logger.error('not a custody event: the body is not JSON');
    return undefined;
  }
  const parsed = CustodyEvent.safeParse(detail);
  if (parsed.success) return parsed.data;
  const d = (detail ?? {}) as { request_id?: unknown };
  logger.error('not a custody event', { requestId: typeof d.request_id === 'string' ? d.request_id : undefined, issues: parsed.error.issues.map((i) => i.path.join('.')) });
  return undefined;
}

export const handler = lambdaHandler(appendBatch);
