import { outboxFile, redriveOutbox, type RedriveResult } from '../../lambdas/store/custody-events';
import { appendCustodyEvent, verifyLedger, type LedgerReport } from '../../lambdas/store/ledger';
import { custodyDeadLetterFile } from '../../local/bus';
import { resolveCliEnv, runCommand, UsageError } from '../cli-env';

export const USAGE = `usage: ni ledger <verify|redrive> [options]

  ni ledger verify [--key ID] [--json]
      Recomputes every custody chain (or one key's) from the ledger table: sequence continuity, links,
      entry hashes, idempotency markers (a claim older than the redelivery window that is not in the chain is a
      break), the checkpoints the policy always writes, each signed checkpoint (signature by the ledger signing
      key, its hash against the entry it pins) and its copy in the anchor outside the table (S3 Object Lock;
      locally ${'${NI_DATA_DIR:-.ni-data}'}/ledger-anchor). Exit 0 when intact; 1 naming the first broken link
      (key, seq, what).
  ni ledger redrive
      Re-delivers the custody events the local gateway could not put on its bus (the outbox,
      NI_CUSTODY_OUTBOX, default ${'${NI_DATA_DIR:-.ni-data}'}/custody-outbox.jsonl) and, locally, those its ledger
      writer kept failing on (${'${NI_DATA_DIR:-.ni-data}'}/custody-dead-letters.jsonl): locally straight into the
      ledger, with --region/--stack onto that stack's event bus. Events already recorded stay recorded once.
      (On AWS the fallback SQS queue is drained by the ledger writer itself; its dead-letter queues are
      re-driven with SQS's own redrive.)

  --region REGION --stack STACK   target a deployed stack instead of the local \`npm start\` store
  --json                          machine-readable report`;

const FLAGS = { key: { type: 'string' }, json: { type: 'boolean' } } as const;

export function run(argv: string[]): Promise<number> {
  return runCommand({ usage: USAGE, flags: FLAGS, helpSubcommand: true }, argv, async ({ values: flags, positionals }) => {
    const [sub, ...rest] = positionals;
    if (sub !== 'verify' && sub !== 'redrive') throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'missing subcommand');
    if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`);
    if (sub === 'redrive' && flags.key !== undefined) throw new UsageError('--key only applies to ni ledger verify');
    const env = await resolveCliEnv(flags);
    env.apply();
    if (sub === 'redrive') {
      const files = env.mode === 'local' ? [outboxFile(), custodyDeadLetterFile()] : [outboxFile()];
      const results: RedriveResult[] = [];
      for (const file of files) results.push(await redriveOutbox(env.mode === 'local' ? { file, deliver: appendCustodyEvent } : { file }));
      const total = (k: keyof RedriveResult) => results.reduce((n, r) => n + r[k], 0);
      if (flags.json) console.log(JSON.stringify({ delivered: total('delivered'), failed: total('failed'), invalid: total('invalid') }, null, 2));
      else {
        results.forEach((r, i) => {
          console.log(`Re-delivered ${r.delivered} custody event(s) from ${files[i]}.`);
          if (r.failed) console.log(`${r.failed} could not be delivered and stay in ${files[i]}.`);
          if (r.invalid) console.log(`${r.invalid} line(s) were not custody events: set aside in ${files[i]}.invalid.`);
        });
      }
      return total('failed') ? 1 : 0;
    }
    const report = await verifyLedger({ keyId: flags.key });
    console.log(flags.json ? JSON.stringify(report, null, 2) : describe(report));
    return report.ok ? 0 : 1;
  });
}

export function describe(report: LedgerReport): string {
  const entries = report.chains.reduce((n, c) => n + c.entries, 0);
  const checkpoints = report.chains.reduce((n, c) => n + c.checkpoints, 0);
  const lines = [`${report.chains.length} chain(s), ${entries} entries, ${checkpoints} signed checkpoint(s).`, `Checkpoints anchored in ${report.anchor}.`];
  for (const c of report.chains) {
    const head = c.head ? `head ${c.head.seq} ${c.head.hash.slice(0, 12)}…` : 'empty';
    const signed = c.last_checkpoint ? `last checkpoint at ${c.last_checkpoint.seq}` : 'no checkpoint yet';
    const flight = `${c.in_flight ? `, ${c.in_flight} in flight` : ''}${c.pending_checkpoints ? `, ${c.pending_checkpoints} checkpoint(s) pending` : ''}`;
    lines.push(`  ${c.ok ? 'ok    ' : 'BROKEN'} ${c.key_id}  ${head}, ${signed}, ${c.unsigned_tail} unsigned${flight}`);
  }
  const p = report.first_problem;
  lines.push(p ? `BROKEN: key ${p.key_id} seq ${p.seq}: ${p.problem}` : 'Ledger intact.');
  return lines.join('\n');
}
