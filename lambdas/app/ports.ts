import type { ByokCredential, ByokProvider } from '../core/byok';
import type { Catalog } from '../core/catalog';
import type { CustodyEvent } from '../core/custody';
import type { UsageBasis } from '../core/pricing';
import type { Principal } from '../core/principal';
import type { Tier } from '../core/tiers';
import type { ProviderRegistry } from '../providers/registry';

/*
 * What the request flow depends on. The composition root (lambdas/compose.ts) gives it the real stores and
 * providers; tests give it fakes.
 */

export interface Reservation {
  keyId: string;
  day: string;
  requestId: string;
  /** micro-CAD */
  amount: number;
  model: string;
  tier: Tier;
  /** false: nothing was written at admission (key without a cap), so settle only adds. */
  reserved: boolean;
}

export interface Spend {
  /** Reserves the worst case against the key's spend day; throws 429 daily_spend_cap_exceeded past the cap. */
  reserve(p: Principal, requestId: string, amount: number, model: string, tier: Tier): Promise<Reservation>;
  /** Admission for a key without a cap: nothing is written. */
  unreserved(p: Principal, requestId: string, model: string, tier: Tier): Reservation;
  /** After the response: the actual cost replaces the reservation; the usage record says where the usage came from. */
  settle(r: Reservation, e: CustodyEvent, basis: UsageBasis): Promise<void>;
  /** A request refused before the upstream call (by its key's request limits): the reservation is given back, nothing recorded. */
  release(r: Reservation): Promise<void>;
  /** When settling kept failing: the reservation stays committed instead of expiring (nothing spent is released). */
  keep(r: Reservation): Promise<void>;
}

/** A chat completion's place under its key's request limits, held until its response has ended. */
export interface Lease {
  keyId: string;
  requestId: string;
}

export interface RequestLimits {
  /**
   * Counts the request against its key's limits; throws 429 (in OpenAI's shape, with retry-after) past one. A
   * lease when the key limits requests in progress (to be released), else null.
   */
  admit(p: Principal, requestId: string): Promise<Lease | null>;
  /** After the response: the request no longer counts as in progress. */
  release(lease: Lease): Promise<void>;
}

export interface Custody {
  /** Sends the event on its way to the ledger; never rejects (failures are persisted and re-driven). */
  emit(e: CustodyEvent): Promise<void>;
  /** The ledger entry of one of this key's requests, or null. */
  receipt(requestId: string, keyId: string): Promise<object | null>;
}

/** Customers' own provider credentials (BYOK), sealed in their keys' records. */
export interface CustomerCredentials {
  /** The secret inside a credential's envelope (opened per request; kept in memory a short while at most). */
  open(keyId: string, provider: ByokProvider, credential: ByokCredential): Promise<string>;
  /** After the response: a call was made with it (`ni keys byok show` prints when). Never rejects. */
  used(keyId: string, provider: ByokProvider, fingerprint: string): Promise<void>;
}

export interface RequestMeasures {
  ttftMs: number | null;
  durationMs: number;
  upstreamThrottles: number;
}

export interface Metrics {
  request(e: CustodyEvent, m: RequestMeasures): void;
}

/** The structured logger's subset the flow uses (ids, counts and codes only: never content). */
export interface Log {
  info(message: string, fields: Record<string, unknown>): void;
  error(message: string, fields: Record<string, unknown>): void;
}

export interface GatewayPorts {
  catalog: Catalog;
  providers: ProviderRegistry;
  spend: Spend;
  limits: RequestLimits;
  custody: Custody;
  byok: CustomerCredentials;
  metrics: Metrics;
  log: Log;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** Calls `fire` after `ms` milliseconds unless the returned function is called first. */
  schedule: (ms: number, fire: () => void) => () => void;
  /** How long an upstream call may take: until the provider accepts it, and in all, from the request's start. */
  deadlines: { acceptMs: number; totalMs: number };
  /** Where the gateway runs, as its custody hop names it. */
  gatewayRegion: string;
  /** Providers whose endpoints are stand-ins: their answers are marked SIMULATED, never a real jurisdiction. */
  simulatedProviders: ReadonlySet<string>;
  /** How long each upstream attempt may wait for the provider's response headers (default: providers/upstream.ts). */
  upstreamFirstByteTimeoutMs?: number;
}
