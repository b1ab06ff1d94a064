import type { EventBridgeEvent, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { CustodyEvent } from '../core/custody';
import { logger } from '../observability';
import { appendCustodyEvent } from '../store/ledger';

/**
 * Appends custody events to the ledger. Two triggers, one path: the custody bus rule (an EventBridge event,
 * detail = CustodyEvent; throwing makes EventBridge retry) and the custody fallback queue (SQS records whose
 * body is the detail or a whole envelope; failed records are returned for SQS to redeliver). Deliveries are
 * at-least-once and in any order: the ledger records each request once.
 */
export async function handler(event: EventBridgeEvent<string, unknown> | SQSEvent): Promise<SQSBatchResponse | void> {
  if (!('Records' in event)) return record(event.detail);
  const results = await Promise.allSettled(event.Records.map(async (r) => record(detailOf(r.body))));
  return {
    batchItemFailures: event.Records.flatMap((r, i) => (results[i].status === 'rejected' ? [{ itemIdentifier: r.messageId }] : [])),
  };
}

function detailOf(body: string): unknown {
  const parsed: unknown = JSON.parse(body);
  const envelope = parsed as { 'detail-type'?: unknown; detail?: unknown };
  return typeof envelope['detail-type'] === 'string' && 'detail' in envelope ? envelope.detail : parsed;
}

async function record(detail: unknown): Promise<void> {
  const parsed = CustodyEvent.safeParse(detail);
  if (!parsed.success) {
    // Thrown, so it ends in the dead-letter queue after the retries rather than vanishing.
    const d = (detail ?? {}) as { request_id?: unknown };
    logger.error('not a custody event', { requestId: typeof d.request_id === 'string' ? d.request_id : undefined, issues: parsed.error.issues.map((i) => i.path.join('.')) });
    throw new Error('invalid custody event');
  }
  try {
    const r = await appendCustodyEvent(parsed.data);
    logger.debug('custody event recorded', { requestId: parsed.data.request_id, keyId: r.key_id, seq: r.seq, status: r.status });
  } catch (err) {
    logger.error('custody event not recorded yet; it will be retried', { requestId: parsed.data.request_id, keyId: parsed.data.key_id, error: (err as Error).message });
    throw err;
  }
}
