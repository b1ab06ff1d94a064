// Commands are required lazily (tsx's CommonJS hook loads them) so `ni keys` never loads the ledger code.
/** The `ni` command line: keys, usage, ledger and catalog, against the local store or a deployed stack. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  keys: { summary: 'create, list, show and revoke API keys', load: async () => require('./commands/keys') },
  accounts: { summary: 'create accounts, invite portal users, move older keys into accounts', load: async () => require('./commands/accounts') },
  usage: { summary: 'show usage and cost per day or per request', load: async () => require('./commands/usage') },
  ledger: { summary: 'verify the custody ledger, re-drive undelivered custody events', load: async () => require('./commands/ledger') },
  catalog: { summary: 'check the catalog against Bedrock', load: async () => require('./commands/catalog') },
  models: { summary: "check (and, once per account, enable) Bedrock's access to every catalog model", load: async () => require('./commands/models') },
};

export const USAGE = `usage: ni <command> [options]

${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`).join('\n')}

Every command talks to the local store of a running \`npm start\` (NI_DATA_DIR, default .ni-data/) unless
given --region REGION --stack STACK_NAME, which targets a deployed stack (AWS credentials from the environment).
Run \`ni <command> --help\` for its options.`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = name ? COMMANDS[name] : undefined;
  if (!command) {
    (name && name !== '--help' && name !== 'help' ? console.error : console.log)(USAGE);
    return name && name !== '--help' && name !== 'help' ? 2 : 0;
  }
  return (await command.load()).run(rest);
}
