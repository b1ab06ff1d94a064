import { randomBytes } from 'node:crypto';
import * as z from 'zod';

/**
 * Accounts (a team or a company) own keys; portal users belong to one account and see only its keys, usage and
 * custody receipts. Keys created before accounts existed belong to the default account.
 */
export const AccountId = z.string().regex(/^acct_[0-9A-Za-z_]{1,64}$/, 'an account id looks like acct_ followed by letters and digits');
export type AccountId = z.infer<typeof AccountId>;
export const DEFAULT_ACCOUNT_ID = 'acct_default';
export const generateAccountId = (): string => `acct_${randomBytes(12).toString('hex')}`;

const Label = z.string().trim().min(1).max(100);

export const Account = z.object({ id: AccountId, name: Label, created_at: z.iso.datetime() });
export type Account = z.infer<typeof Account>;

/** A portal user: `id` is the identity provider's subject (Cognito's `sub`), or the local runtime's own id. */
export const UserId = z.string().regex(/^[0-9A-Za-z_-]{1,128}$/);
export const PortalUser = z.object({
  id: UserId,
  account_id: AccountId,
  email: z.email(),
  created_at: z.iso.datetime(),
});
export type PortalUser = z.infer<typeof PortalUser>;
