import { AdminCreateUserCommand, CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { AccountId } from '../../lambdas/core/accounts';
import { addUser, createAccount, ensureDefaultAccount, getAccount, listAccounts, listUsers } from '../../lambdas/store/accounts';
import { migrateKeysToAccounts } from '../../lambdas/store/keys';
import { createSignInCode, signInPath } from '../../local/portal-auth';
import { resolveCliEnv, runCommand, UsageError, type CliEnv } from '../cli-env';

export const USAGE = `usage: ni accounts <create|list|invite|migrate> [options]

  ni accounts create --name NAME [--json]     a new account (a team or a company) that keys and portal users belong to
  ni accounts list [--json]                   every account, with its portal users
  ni accounts invite --account ACCT --email EMAIL
      Adds a portal user to the account. Against a stack: creates the user in the portal's Cognito user pool,
      which e-mails a temporary password (the user sets a password and may add MFA on first sign-in). Locally:
      prints a one-time sign-in link for the running \`npm start\`.
  ni accounts migrate                         puts keys created before accounts in the default account (acct_default)
                                              (once per deployed stack; npm start does it by itself)

  --region REGION --stack STACK   target a deployed stack instead of the local \`npm start\` store
  --json                          machine-readable output`;

const FLAGS = {
  name: { type: 'string' },
  account: { type: 'string' },
  email: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export function run(argv: string[]): Promise<number> {
  return runCommand({ usage: USAGE, flags: FLAGS, helpSubcommand: true }, argv, async ({ values: flags, positionals }) => {
    const [sub, ...rest] = positionals;
    if (!sub || !['create', 'list', 'invite', 'migrate'].includes(sub)) throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'missing subcommand');
    if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`);
    if (sub === 'create' && !flags.name) throw new UsageError('--name is required');
    if (sub === 'invite') {
      if (!flags.account || !AccountId.safeParse(flags.account).success) throw new UsageError('--account ACCT is required (an id from ni accounts list)');
      if (!flags.email || !z.email().safeParse(flags.email).success) throw new UsageError('--email is required (the user\'s e-mail address)');
    }
    const env = await resolveCliEnv(flags);
    env.apply();
    switch (sub) {
      case 'create': {
        const account = await createAccount(flags.name!);
        console.log(flags.json ? JSON.stringify(account, null, 2) : `Created account ${account.id} (${account.name}). Invite users with ni accounts invite --account ${account.id} --email …`);
        return 0;
      }
      case 'list': {
        await ensureDefaultAccount();
        const accounts = await Promise.all((await listAccounts()).map(async (a) => ({ ...a, users: await listUsers(a.id) })));
        if (flags.json) console.log(JSON.stringify(accounts, null, 2));
        else for (const a of accounts) console.log(`${a.id}  ${a.name}  (${a.users.length} portal user${a.users.length === 1 ? '' : 's'}${a.users.length ? `: ${a.users.map((u) => u.email).join(', ')}` : ''})`);
        return 0;
      }
      case 'invite':
        return invite(env, flags.account!, flags.email!, Boolean(flags.json));
      default: {
        await ensureDefaultAccount();
        const moved = await migrateKeysToAccounts();
        console.log(moved.length ? `Indexed ${moved.length} key(s) in their accounts: ${moved.map((k) => `${k.id} → ${k.account_id}`).join(', ')}` : 'Every key is already in its account.');
        return 0;
      }
    }
  });
}

async function invite(env: CliEnv, accountId: string, email: string, json: boolean): Promise<number> {
  if (!await getAccount(accountId)) throw new UsageError(`--account: no account ${accountId} (ni accounts list)`);
  if (env.mode === 'stack') {
    if (!env.portalUserPoolId) throw new Error(`stack ${env.stack} has no PortalUserPoolId output: deploy the version with the portal first`);
    const cognito = new CognitoIdentityProviderClient({ region: env.region });
    try {
      const out = await cognito.send(new AdminCreateUserCommand({
        UserPoolId: env.portalUserPoolId,
        Username: email,
        UserAttributes: [{ Name: 'email', Value: email }, { Name: 'email_verified', Value: 'true' }],
        DesiredDeliveryMediums: ['EMAIL'],
      }));
      const sub = out.User?.Attributes?.find((a) => a.Name === 'sub')?.Value;
      if (!sub) throw new Error('Cognito returned no user id (sub)');
      const user = await addUser({ id: sub, account_id: accountId, email });
      console.log(json ? JSON.stringify(user, null, 2) : `Invited ${email} to ${accountId}: Cognito e-mails a temporary password; the portal is at the stack's PortalUrl output.`);
    } finally {
      cognito.destroy();
    }
    return 0;
  }
  const user = await addUser({ id: `local_${randomBytes(9).toString('hex')}`, account_id: accountId, email });
  const link = `${env.gatewayUrl ?? ''}${signInPath(await createSignInCode(user.id))}`;
  console.log(json ? JSON.stringify({ ...user, sign_in_link: link }, null, 2) : `Added ${email} to ${accountId}. Portal sign-in link (works once, for 24 hours):\n  ${link}`);
  return 0;
}
