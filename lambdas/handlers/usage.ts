import * as z from 'zod';
import { GATEWAY_ERRORS } from '../app/http';
import { badRequest } from '../core/errors';
import { isDay, shiftDay, spendDay } from '../core/spend-day';
import { queryUsage } from '../store/usage';
import { httpHandler } from './middleware';

/**
 * GET /api/usage?from=YYYY-MM-DD&to=YYYY-MM-DD&granularity=day|request&limit=N&cursor=…
 * The caller's own key only (the key id comes from the authorizer, never from the query). Days are the key's
 * spend days, in its time zone; without from/to, the last 7 days up to today.
 */
const MAX_RANGE_DAYS = 366;
const DEFAULT_RANGE_DAYS = 7;

const Day = z.string().refine(isDay, 'a date written YYYY-MM-DD');
const Query = z.object({
  from: Day.optional(),
  to: Day.optional(),
  granularity: z.enum(['day', 'request']).default('day'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().min(1).max(2048).optional(),
});

export const handler = httpHandler(async (req) => {
  const principal = req.principal;
  if (!principal) throw GATEWAY_ERRORS.invalidApiKey();
  const parsed = Query.safeParse(req.query);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badRequest(`Invalid query parameter '${issue.path.join('.')}': ${issue.message}`, issue.path.join('.') || null);
  }
  const q = parsed.data;
  const to = q.to ?? spendDay(principal.timezone, new Date()).day;
  const from = q.from ?? shiftDay(to, 1 - DEFAULT_RANGE_DAYS);
  if (from > to) throw badRequest(`'from' (${from}) is after 'to' (${to})`, 'from');
  if (shiftDay(from, MAX_RANGE_DAYS - 1) < to) throw badRequest(`The range may span at most ${MAX_RANGE_DAYS} days`, 'from');
  const page = await queryUsage(principal.keyId, { from, to, granularity: q.granularity, limit: q.limit, cursor: q.cursor });
  return {
    status: 200,
    body: { object: 'list', key_id: principal.keyId, granularity: q.granularity, from, to, currency: 'CAD', ...page },
    headers: { 'cache-control': 'no-store' },
  };
});
