import {
  BedrockClient, CreateFoundationModelAgreementCommand, GetFoundationModelAvailabilityCommand, ListFoundationModelAgreementOffersCommand,
  type GetFoundationModelAvailabilityResponse,
} from '@aws-sdk/client-bedrock';
import { catalog } from '../../lambdas/catalog';
import { inferenceProfile } from '../../lambdas/providers/bedrock/profiles';
import { runCommand, UsageError } from '../cli-env';
import { bedrockRoutes } from './catalog';

export const USAGE = `usage: ni models access [--enable] [--region REGION] [--endpoint URL] [--json]

  For every model the catalog routes to Bedrock, asks Bedrock whether this account may invoke it:
  the model's AWS Marketplace agreement, its authorization (Anthropic models need the account's use case
  details, submitted once), and its entitlement. Exits 1 while any model is not ready.
    --enable    accept the public offer of each model whose agreement is missing (the subscription AWS
                would otherwise attempt on the first call, with the gateway's role, which may not subscribe)
    --region    the region the gateway calls Bedrock in (default: every region the catalog uses)
    --endpoint  Bedrock control-plane endpoint (default: the region's public endpoint)
  Run once per account by an administrator: it needs bedrock:GetFoundationModelAvailability, and with
  --enable bedrock:ListFoundationModelAgreementOffers, bedrock:CreateFoundationModelAgreement and
  aws-marketplace:Subscribe, aws-marketplace:ViewSubscriptions.`;

const FLAGS = { enable: { type: 'boolean' }, endpoint: { type: 'string' }, json: { type: 'boolean' } } as const;

export interface ModelAccess {
  region: string;
  /** The foundation model behind the catalog's routes (an inference profile's underlying model). */
  modelId: string;
  agreement: string;
  authorization: string;
  entitlement: string;
  ready: boolean;
  /** What was done (--enable) or what an administrator must do. */
  actions: string[];
}

/** The foundation models (per region) the catalog's Bedrock routes invoke. */
export function modelsToCheck(region?: string): { region: string; modelId: string }[] {
  const seen = new Map<string, { region: string; modelId: string }>();
  for (const { route } of bedrockRoutes(catalog())) {
    if (region && route.region !== region) continue;
    const modelId = inferenceProfile(route.upstream_id)?.modelId ?? route.upstream_id;
    seen.set(`${route.region} ${modelId}`, { region: route.region, modelId });
  }
  return [...seen.values()];
}

/** Reads Bedrock's answer: ready, or the steps still missing. Pure. */
export function assess(region: string, modelId: string, a: Pick<GetFoundationModelAvailabilityResponse, 'agreementAvailability' | 'authorizationStatus' | 'entitlementAvailability'>): ModelAccess {
  const agreement = a.agreementAvailability?.status ?? 'UNKNOWN';
  const authorization = a.authorizationStatus ?? 'UNKNOWN';
  const entitlement = a.entitlementAvailability ?? 'UNKNOWN';
  const actions: string[] = [];
  if (agreement === 'NOT_AVAILABLE' || agreement === 'ERROR') actions.push('no Marketplace agreement: run again with --enable (or open the model in the Bedrock console\'s model catalog)');
  if (agreement === 'PENDING') actions.push('the Marketplace agreement is being set up (up to 15 minutes): check again later');
  if (authorization === 'NOT_AUTHORIZED') {
    actions.push(modelId.startsWith('anthropic.')
      ? 'submit the Anthropic use case details once for the account (Bedrock console → Model catalog → an Anthropic model)'
      : 'not authorized: an IAM or organization policy (SCP) denies this model to the account');
  }
  if (entitlement === 'NOT_AVAILABLE') actions.push('not entitled: the account needs a valid payment method for AWS Marketplace');
  const ready = agreement === 'AVAILABLE' && authorization === 'AUTHORIZED' && entitlement === 'AVAILABLE';
  return { region, modelId, agreement, authorization, entitlement, ready, actions };
}

async function check(client: BedrockClient, region: string, modelId: string, enable: boolean): Promise<ModelAccess> {
  const first = assess(region, modelId, await client.send(new GetFoundationModelAvailabilityCommand({ modelId })));
  if (!enable || !['NOT_AVAILABLE', 'ERROR'].includes(first.agreement)) return first;
  const { offers } = await client.send(new ListFoundationModelAgreementOffersCommand({ modelId, offerType: 'PUBLIC' }));
  const offer = offers?.[0]?.offerToken;
  if (!offer) return { ...first, actions: [...first.actions, 'no public offer to accept'] };
  await client.send(new CreateFoundationModelAgreementCommand({ modelId, offerToken: offer }));
  const after = assess(region, modelId, await client.send(new GetFoundationModelAvailabilityCommand({ modelId })));
  return { ...after, actions: ['accepted the public offer', ...after.actions.filter((a) => !a.startsWith('no Marketplace agreement'))] };
}

export function run(argv: string[]): Promise<number> {
  return runCommand({ usage: USAGE, flags: FLAGS }, argv, async ({ values: flags, positionals }) => {
    if (positionals[0] !== 'access' || positionals.length > 1) {
      throw new UsageError(positionals[0] && positionals[0] !== 'access' ? `unknown subcommand '${positionals[0]}'` : 'usage: ni models access');
    }
    if (flags.stack) throw new UsageError('ni models access asks Bedrock, not a stack: --stack does not apply');
    const models = modelsToCheck(flags.region);
    if (models.length === 0) throw new UsageError(`the catalog has no Bedrock routes${flags.region ? ` in ${flags.region}` : ''}`);
    const clients = new Map<string, BedrockClient>();
    const clientFor = (region: string) => clients.get(region) ?? clients.set(region, new BedrockClient({ region, ...(flags.endpoint ? { endpoint: flags.endpoint } : {}) })).get(region)!;
    try {
      const report: ModelAccess[] = [];
      for (const m of models) report.push(await check(clientFor(m.region), m.region, m.modelId, flags.enable === true));
      const notReady = report.filter((r) => !r.ready).length;
      if (flags.json) console.log(JSON.stringify({ ready: notReady === 0, models: report }, null, 2));
      else console.log(text(report, notReady));
      return notReady > 0 ? 1 : 0;
    } finally {
      for (const c of clients.values()) c.destroy();
    }
  });
}

function text(report: ModelAccess[], notReady: number): string {
  const lines = report.flatMap((r) => [
    `${(r.ready ? 'ready' : 'NOT READY').padEnd(9)}  ${r.region}  ${r.modelId}  (agreement ${r.agreement}, ${r.authorization.toLowerCase()}, entitlement ${r.entitlement})`,
    ...r.actions.map((a) => `           - ${a}`),
  ]);
  lines.push('', notReady > 0 ? `${notReady} model(s) not ready.` : 'Every catalog model is callable from this account.');
  return lines.join('\n');
}
