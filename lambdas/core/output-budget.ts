import type { Model } from './catalog';

/**
 * The output tokens a request asks the provider for: its own max_tokens, else its key's default, else the
 * model's default — never more than the model's real limit. This bounds both the provider's quota reservation
 * and the spend-cap reservation, so a default far below the limit keeps both from holding room for output that
 * rarely comes; a client that wants more says so with max_tokens.
 */
export function outputBudget(model: Pick<Model, 'max_output_tokens' | 'default_max_tokens'>, requested: number | undefined, keyDefault?: number): number {
  return Math.min(requested ?? keyDefault ?? model.default_max_tokens, model.max_output_tokens);
}
