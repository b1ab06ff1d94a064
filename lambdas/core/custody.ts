import * as z from 'zod';
import { ByokProvider } from './byok';
import { PII_TYPES } from './pii';
import { Jurisdiction, Tier } from './tiers';

/** EventBridge envelope of the custody event: the ledger rule matches on these. */
export const CUSTODY_EVENT_SOURCE = 'ni.gateway';
export const CUSTODY_DETAIL_TYPE = 'NI Custody Record';
export const CUSTODY_SCHEMA_VERSION = 1;

/** Where the data was processed, as reported to clients; SIMULATED when the local stand-in served it. */
export const ResolvedJurisdiction = z.union([Jurisdiction, z.literal('SIMULATED')]);
export type ResolvedJurisdiction = z.infer<typeof ResolvedJurisdiction>;

const Counts = z.partialRecord(z.enum(PII_TYPES), z.number().int().nonnegative());
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** One call to an upstream route, in the order made; `outcome` is `ok` or the failure that moved the request on. */
export const RouteAttempt = z.object({
  provider: z.string(), region: z.string(), upstream_id: z.string(), outcome: z.string(),
  /** Whose credential the call carried, when the key brings its own (BYOK); absent: the operator's. */
  credential: z.enum(['customer', 'operator']).optional(),
});
export type RouteAttempt = z.infer<typeof RouteAttempt>;

/**
 * One request's custody record (detail of the EventBridge event). Hashes and counts only: no prompt,
 * completion, key secret or personal data may ever be added here.
 */
export const CustodyEvent = z.object({
  schema_version: z.literal(CUSTODY_SCHEMA_VERSION),
  request_id: z.string().min(1),
  key_id: z.string().min(1),
  started_at: z.iso.datetime(),
  first_byte_at: z.iso.datetime().nullable(),
  ended_at: z.iso.datetime(),
  model: z.string(),
  privacy_tier: Tier,
  jurisdiction: ResolvedJurisdiction.nullable(),
  route: z.object({ provider: z.string(), region: z.string(), upstream_id: z.string() }).nullable(),
  custody_path: z.array(z.string()),
  /** Every route called, the one that answered last; absent when nothing was sent upstream (and in older events). */
  attempts: z.array(RouteAttempt).optional(),
  usage: z.object({
    input_tokens: z.number().int().nonnegative(),
    output_tokens: z.number().int().nonnegative(),
    cache_read_tokens: z.number().int().nonnegative(),
    cache_write_tokens: z.number().int().nonnegative(),
  }),
  /** What the gateway bills (micro-CAD): for a request on the customer's own credential, the routing-only fee. */
  cost_micro_cad: z.number().int().nonnegative(),
  /**
   * Present when the key brings its own credential for the provider serving the model: whose credential served the
   * request (never the credential; its fingerprint tells rotations apart), and whether the operator's replaced a
   * refused one because the key allows it (`fallback`). Absent in older events and for other requests.
   */
  credential: z.object({
    owner: z.enum(['customer', 'operator']),
    provider: ByokProvider,
    fingerprint: z.string(),
    fallback: z.boolean(),
  }).optional(),
  /** With the customer's credential: what their provider charges them, estimated at the catalog's list price (micro-CAD). */
  provider_cost_estimate_micro_cad: z.number().int().nonnegative().optional(),
  status: z.enum(['ok', 'error', 'cancelled']),
  http_status: z.number().int(),
  finish_reason: z.string().nullable(),
  error_code: z.string().nullable(),
  pii_substitutions: Counts,
  /** SHA-256 of the exact bytes sent upstream; null when nothing was sent. */
  request_sha256: Sha256.nullable(),
  /** SHA-256 of the exact body bytes returned to the client. */
  response_sha256: Sha256,
});
export type CustodyEvent = z.infer<typeof CustodyEvent>;

/**
 * X-NI-Custody-Path: the hops that held the data, in order, joined by " > ". Each hop is
 * `<party>@<place>` optionally followed by `#<upstream id>`; place is a cloud region, or a jurisdiction where the
 * provider chooses the processing region (a cross-region inference profile). The provider names its own hops.
 */
export const custodyPath = (gatewayRegion: string, providerHops: string[]) => [`ni-gateway@${gatewayRegion}`, ...providerHops];

/** The hop of a local stand-in that answered in a provider's place. */
export const standInHop = (provider: string, upstreamId: string) => `${provider}-standin@loopback#${upstreamId}`;

export const formatCustodyPath = (hops: string[]) => hops.join(' > ');
export const parseCustodyPath = (header: string) =>
  header.split(' > ').map((hop) => {
    const m = /^([a-z0-9_-]+)@([^#]+)(?:#(.+))?$/.exec(hop);
    if (!m) throw new Error(`not a custody hop: ${hop}`);
    return { party: m[1], place: m[2], upstream_id: m[3] ?? null };
  });
