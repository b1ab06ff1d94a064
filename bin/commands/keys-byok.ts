import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { clearByok, setByok, showByok, type ByokView } from '../../lambdas/app/byok';
import { AzureDeploymentType, ByokProvider } from '../../lambdas/core/byok';
import { AUTHORIZER_CACHE_TTL_SECONDS, DEFAULT_KEY_CACHE_TTL_MS } from '../../lambdas/core/keys';
import { resolveCliEnv, runCommand, UsageError } from '../cli-env';

const TAKES_EFFECT = `within ${Math.ceil(DEFAULT_KEY_CACHE_TTL_MS / 1000)} seconds locally, ${AUTHORIZER_CACHE_TTL_SECONDS + Math.ceil(DEFAULT_KEY_CACHE_TTL_MS / 1000)} seconds on a deployed stack`;

export const USAGE = `usage: ni keys byok <set|show|clear> KEY_ID [options]

  ni keys byok set KEY_ID --provider ${ByokProvider.options.join('|')} [--allow-fallback]
                   [--endpoint URL --deployment MODEL=DEPLOYMENT ... --deployment-type TYPE]  < secret
      Attaches the customer's own credential for a provider to the key (replacing any: rotation). The secret is
      read from standard input (a prompt without echo on a terminal), never from arguments or the environment;
      only its encryption is stored. Requests on that provider's routes then use it and are billed the
      catalog's routing-only fee; takes effect ${TAKES_EFFECT}.
        --allow-fallback   when the provider refuses it (or it is rate-limited or out of quota), the gateway's own
                           credential may serve instead, at the list price (custody and usage say so);
                           without it, such a request fails with byok_provider_error
        Azure OpenAI only:
        --endpoint         the resource's endpoint; Canadian residency needs Azure's regional form
                           https://<region>.api.cognitive.microsoft.com (e.g. canadaeast): a resource's own
                           subdomain does not say where it runs
        --deployment       MODEL=DEPLOYMENT, e.g. openai/gpt-4o=my-gpt-4o (repeat for each model)
        --deployment-type  ${AzureDeploymentType.options.join(' | ')}: standard and provisioned
                           deployments process in the resource's region, the others anywhere
  ni keys byok show KEY_ID [--json]               provider, masked credential, fingerprint, set and last used
  ni keys byok clear KEY_ID [--provider P]        removes one provider's credential (default: all)

  --region REGION --stack STACK   target a deployed stack instead of the local \`npm start\` store`;

const FLAGS = {
  provider: { type: 'string' },
  endpoint: { type: 'string' },
  deployment: { type: 'string', multiple: true },
  'deployment-type': { type: 'string' },
  'allow-fallback': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/** The secret, from standard input: one line typed at a prompt that does not echo it, or everything piped in. */
async function readSecret(): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) {
    process.stderr.write('Paste the credential (not shown), then press Enter: ');
    const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
    const rl = createInterface({ input: stdin, output: silent, terminal: true });
    const line = await new Promise<string>((resolve) => rl.once('line', resolve));
    rl.close();
    process.stderr.write('\n');
    return line;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

function deployments(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs) return undefined;
  return Object.fromEntries(pairs.map((pair) => {
    const m = /^([^=]+)=(.+)$/.exec(pair);
    if (!m) throw new UsageError(`--deployment: expected MODEL=DEPLOYMENT, got '${pair}'`);
    return [m[1].trim(), m[2].trim()];
  }));
}

const time = (iso: string | null) => (iso ? `${iso.slice(0, 19).replace('T', ' ')}Z` : 'never');

function describe(v: ByokView): string {
  const rows: [string, string][] = [
    ['provider', v.provider],
    ['credential', v.masked],
    ['fingerprint', v.fingerprint],
    ['set', time(v.set_at)],
    ['last used', time(v.last_used_at)],
    ['fallback', v.allow_fallback ? "allowed: the gateway's credential serves when this one is refused" : 'never'],
    ...(v.endpoint ? [['endpoint', v.endpoint] as [string, string]] : []),
    ...(v.deployment_type ? [['deployments', v.deployment_type] as [string, string]] : []),
    ...v.routes.map((r, i): [string, string] => [i === 0 ? 'routes' : '', `${r.model} → ${r.upstream_id} @ ${r.region} (${r.jurisdiction})`]),
  ];
  return rows.map(([k, val]) => `  ${k.padEnd(13)}${val}`).join('\n');
}

export function run(argv: string[]): Promise<number> {
  return runCommand({ usage: USAGE, flags: FLAGS, helpSubcommand: true }, argv, async ({ values: flags, positionals }) => {
    const [sub, keyId, ...extra] = positionals;
    if (!sub || !['set', 'show', 'clear'].includes(sub)) throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'missing subcommand');
    if (!keyId || extra.length) throw new UsageError(`ni keys byok ${sub} takes one key id`);
    const provider = flags.provider === undefined ? undefined : ByokProvider.safeParse(flags.provider);
    if (provider && !provider.success) throw new UsageError(`--provider: one of ${ByokProvider.options.join(', ')}`);
    if (sub !== 'set') {
      const stray = (['endpoint', 'deployment', 'deployment-type', 'allow-fallback'] as const).find((f) => flags[f] !== undefined);
      if (stray) throw new UsageError(`--${stray} only applies to ni keys byok set`);
    }
    if (sub === 'show' && provider) throw new UsageError('--provider does not apply to ni keys byok show');
    if (sub === 'set' && !provider) throw new UsageError('--provider is required');
    const env = await resolveCliEnv(flags);
    env.apply();
    switch (sub) {
      case 'set': {
        const secret = await readSecret();
        if (!secret) throw new UsageError('no credential on standard input');
        const v = await setByok(keyId, {
          provider: provider!.data!, secret, allow_fallback: flags['allow-fallback'] === true,
          endpoint: flags.endpoint, deployments: deployments(flags.deployment), deployment_type: flags['deployment-type'] as AzureDeploymentType | undefined,
        });
        console.log(`Set ${keyId}'s own ${v.provider} credential; requests use it ${TAKES_EFFECT}.\n${describe(v)}`);
        return 0;
      }
      case 'show': {
        const views = await showByok(keyId);
        if (flags.json) console.log(JSON.stringify(views, null, 2));
        else console.log(views.length ? views.map(describe).join('\n\n') : `${keyId} brings no credential of its own.`);
        return 0;
      }
      default: {
        const cleared = await clearByok(keyId, provider?.data);
        console.log(cleared.length
          ? `Cleared ${keyId}'s own ${cleared.join(', ')} credential${cleared.length > 1 ? 's' : ''}; the gateway's credential serves again ${TAKES_EFFECT}.`
          : `${keyId} had no ${provider?.data ?? ''}${provider ? ' ' : ''}credential of its own.`);
        return 0;
      }
    }
  });
}
