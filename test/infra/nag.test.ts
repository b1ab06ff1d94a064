import * as fs from 'node:fs';
import * as path from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { removeAssembly, testApp } from './fixture';

/** Every acknowledgment recorded with Validations.of(...).acknowledge(), as { path, id, reason }. */
function acknowledgments(root: IConstruct): { path: string; id: string; reason: string }[] {
  return root.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) => Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({ path: c.node.path, id: id.replace(/^annotation::/i, ''), reason }))),
  );
}

describe('cdk-nag AwsSolutions', () => {
  const { app, stack } = testApp();
  afterAll(() => removeAssembly(app));

  test('no unacknowledged error or warning', () => {
    const report = new AwsSolutionsChecks().validateScope(app);
    const findings = report.violations.map((v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
    expect(findings).toEqual([]);
  });

  test('synth, which runs the same checks as a validation plugin (plus CloudFormation validation), passes and reports nothing', () => {
    const assembly = app.synth();
    const report = JSON.parse(fs.readFileSync(path.join(assembly.directory, 'validation-report.json'), 'utf8')) as { pluginReports: unknown[] };
    expect(report.pluginReports).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
  });

  test('every acknowledgment has a written reason and silences a finding that really fires', () => {
    const acks = acknowledgments(app);
    expect(acks.length).toBeGreaterThan(0);
    for (const a of acks) {
      expect(a.id).toMatch(/^AwsSolutions-/);
      expect(a.reason.trim().length).toBeGreaterThan(40);
    }
    // The same app built with acknowledgments switched off must raise every acknowledged rule: none is stale.
    const acknowledge = Validations.prototype.acknowledge;
    Validations.prototype.acknowledge = () => undefined;
    try {
      const bare = testApp().app;
      const fired = new Set(new AwsSolutionsChecks().validateScope(bare).violations.map((v) => v.ruleName));
      removeAssembly(bare);
      expect([...new Set(acks.map((a) => a.id))].filter((id) => !fired.has(id))).toEqual([]);
    } finally {
      Validations.prototype.acknowledge = acknowledge;
    }
  });
});
