import type { Catalog, Model } from './catalog';
import { estimateInputTokens, formatCad, worstCaseCost, type Prices, type TokenUsage } from './pricing';
import type { Jurisdiction, Tier } from './tiers';

/**
 * Prices are published as decimal strings in CAD per million tokens ("4.14", "0.414"): exact (the same
 * integer micro-CAD the gateway bills with, no binary floating point) and easy to show as they are.
 */
export interface PublicModel {
  model_id: string;
  provider: string;
  display_name: string;
  privacy_tiers: Tier[];
  jurisdictions: Jurisdiction[];
  pricing: {
    currency: 'CAD';
    input_per_mtok: string;
    output_per_mtok: string;
    cache_read_per_mtok: string;
    cache_write_per_mtok: string;
    /** What a request on the customer's own provider credential (BYOK) is billed instead: the routing-only fee. */
    byok_routing_fee: { input_per_mtok: string; output_per_mtok: string; cache_read_per_mtok: string; cache_write_per_mtok: string };
  };
  context_window: number;
  max_output_tokens: number;
  capabilities: Model['capabilities'];
}

/** micro-CAD → CAD with trailing zeros dropped, at least two decimals ("20.70", "0.414"). */
const publicCad = (micro: number) => formatCad(micro).replace(/(\.\d\d\d*?)0+$/, '$1');

const perMtok = (p: Prices) => ({
  input_per_mtok: publicCad(p.input),
  output_per_mtok: publicCad(p.output),
  cache_read_per_mtok: publicCad(p.cache_read),
  cache_write_per_mtok: publicCad(p.cache_write),
});

/**
 * The public price list: every model the gateway serves, with the tiers and jurisdictions its routes allow, and the
 * BYOK routing-only fee, as the fraction of the list price the catalog sets and as each model's prices.
 */
export function publicCatalog(c: Catalog): { byok_routing_fee_fraction_of_list_price: string; models: PublicModel[] } {
  return {
    byok_routing_fee_fraction_of_list_price: (c.byokRoutingFeeBps / 10_000).toString(),
    models: c.models.map((m) => ({
      model_id: m.id,
      provider: m.provider,
      display_name: m.display_name,
      privacy_tiers: m.tiers,
      jurisdictions: m.jurisdictions,
      pricing: { currency: 'CAD', ...perMtok(m.prices), byok_routing_fee: perMtok(m.byok_fee_prices) },
      context_window: m.context_window,
      max_output_tokens: m.max_output_tokens,
      capabilities: m.capabilities,
    })),
  };
}

/**
 * What admission reserves against the daily cap (micro-CAD): the request's input bounded from its size, and
 * the most output it may produce (its max_tokens, never more than the model's own limit), at the prices the
 * gateway will bill (the list price, or the BYOK routing-only fee).
 */
export function reservationAmount(model: Model, bodyBytes: number, maxTokens: number | undefined, prices: Prices = model.prices): number {
  const output = Math.min(maxTokens ?? model.max_output_tokens, model.max_output_tokens);
  return worstCaseCost(estimateInputTokens(bodyBytes), output, prices);
}

/**
 * The usage billed for an answer whose provider reported none (it broke, or hit the gateway's deadline, before
 * its usage metadata): the request's input and the output relayed to the client, each bounded from its UTF-8
 * size the way admission bounds input, so an estimate never undercuts what the provider bills.
 */
export function estimatedUsage(requestBytes: number, relayedBytes: number): TokenUsage {
  return { input: estimateInputTokens(requestBytes), output: estimateInputTokens(relayedBytes), cache_read: 0, cache_write: 0, reasoning: 0 };
}
