import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { apiKeySecretName, buildServerSettings, DEFAULT_AGENTS, serverEnvironment, withoutApiKey } from '../../src/settings';

interface Manifest {
  contributes: { configuration: { properties: Record<string, { default?: unknown; scope?: string; description?: string; markdownDescription?: string; enum?: unknown[]; enumDescriptions?: unknown[] }> } };
}

const manifest = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8'),
) as Manifest;
const properties = manifest.contributes.configuration.properties;

/** What VS Code returns for `goldiff.<key>` when the user set nothing: the manifest default. */
function defaults(overrides: Record<string, unknown> = {}): (key: string) => unknown {
  return (key) => (key in overrides ? overrides[key] : properties[`goldiff.${key}`]?.default);
}

test('the defaults declared in package.json map to the server settings', () => {
  const { settings, problems } = buildServerSettings(defaults(), undefined);
  assert.deepEqual(problems, []);
  assert.deepEqual(settings, {
    mode: 'local',
    capture: { enabled: false, exclude: [] },
    settleSeconds: 10,
    frontier: { provider: 'openai', baseUrl: null, model: null, apiKey: null },
    local: { model: null, adapter: null, endpoint: null },
    agents: ['claude', 'codex', 'aider', 'gemini', 'goose', 'opencode', 'cursor-agent'],
  });
});

test('goldiff.agents reaches the server, and its default is the one package.json declares', () => {
  assert.deepEqual(properties['goldiff.agents']?.default, DEFAULT_AGENTS);
  const { settings, problems } = buildServerSettings(defaults({ agents: [' my-agent ', '', 7, 'claude'] }), undefined);
  assert.deepEqual(settings.agents, ['my-agent', 'claude']);
  assert.deepEqual(problems, []);
  // An empty list is a choice (watch no agent), not "unset".
  assert.deepEqual(buildServerSettings(defaults({ agents: [] }), undefined).settings.agents, []);
  const wrong = buildServerSettings(defaults({ agents: 'claude' }), undefined);
  assert.deepEqual(wrong.settings.agents, DEFAULT_AGENTS);
  assert.deepEqual(wrong.problems, ['Setting goldiff.agents must be a list of command names; ignoring it.']);
});

test('user values and the API key from secret storage reach the server, trimmed', () => {
  const { settings } = buildServerSettings(
    defaults({
      mode: 'shadow',
      'capture.enabled': true,
      'capture.exclude': ['*.log', '', 3],
      settleSeconds: 5,
      'frontier.provider': 'anthropic',
      'frontier.baseUrl': ' http://127.0.0.1:8080/v1 ',
      'frontier.model': 'claude-x',
      'local.model': '/models/tiny.gguf',
      'local.adapter': 'adapter.gguf',
      'local.endpoint': ' http://models.example:8000/v1 ',
    }),
    'sk-test',
  );
  assert.deepEqual(settings, {
    mode: 'shadow',
    capture: { enabled: true, exclude: ['*.log'] },
    settleSeconds: 5,
    frontier: { provider: 'anthropic', baseUrl: 'http://127.0.0.1:8080/v1', model: 'claude-x', apiKey: 'sk-test' },
    local: { model: '/models/tiny.gguf', adapter: 'adapter.gguf', endpoint: 'http://models.example:8000/v1' },
    agents: ['claude', 'codex', 'aider', 'gemini', 'goose', 'opencode', 'cursor-agent'],
  });
});

test('hand-written invalid values fall back and say what to do', () => {
  const { settings, problems } = buildServerSettings(
    defaults({ mode: 'turbo', 'frontier.provider': 'gemini', settleSeconds: -1, 'capture.exclude': '*.log' }),
    undefined,
  );
  assert.equal(settings.mode, 'local');
  assert.equal(settings.frontier.provider, 'openai');
  assert.equal(settings.settleSeconds, 10);
  assert.deepEqual(settings.capture.exclude, []);
  assert.deepEqual(problems, [
    'Setting goldiff.mode is "turbo"; use one of frontier, local, shadow. Using "local".',
    'Setting goldiff.frontier.provider is "gemini"; use one of openai, anthropic. Using "openai".',
    'Setting goldiff.settleSeconds must be a positive number of seconds; using 10.',
    'Setting goldiff.capture.exclude must be a list of glob patterns; ignoring it.',
  ]);
});

test('capture is on only for an explicit true, and the workspace answer wins', () => {
  for (const value of [undefined, 'true', 1, null]) {
    assert.equal(buildServerSettings(defaults({ 'capture.enabled': value }), undefined).settings.capture.enabled, false);
  }
  assert.equal(buildServerSettings(defaults({ 'capture.enabled': true }), undefined).settings.capture.enabled, true);
  assert.equal(buildServerSettings(defaults({ 'capture.enabled': true }), undefined, false).settings.capture.enabled, false);
  assert.equal(buildServerSettings(defaults(), undefined, true).settings.capture.enabled, true);
});

test('no one can switch capture on for others through workspace settings', () => {
  assert.equal(properties['goldiff.capture.enabled']?.scope, 'application');
});

test('the API key is never a setting in package.json', () => {
  assert.deepEqual(
    Object.keys(properties).filter((k) => /key|secret|token/i.test(k)),
    [],
  );
});

test('every setting declares a scope and a description, and every enum value is described', () => {
  for (const [name, p] of Object.entries(properties)) {
    assert.ok(p.scope, `${name} has no scope`);
    assert.ok(p.description ?? p.markdownDescription, `${name} has no description`);
    if (p.enum) {
      assert.equal(p.enumDescriptions?.length, p.enum.length, `${name} enum values lack descriptions`);
    }
  }
});

test('the settings the server contract names are all declared', () => {
  const expected = [
    'goldiff.pythonPath', 'goldiff.mode', 'goldiff.frontier.provider', 'goldiff.frontier.baseUrl',
    'goldiff.frontier.model', 'goldiff.local.model', 'goldiff.local.adapter', 'goldiff.capture.enabled',
    'goldiff.capture.exclude', 'goldiff.settleSeconds', 'goldiff.home',
  ];
  for (const name of expected) {
    assert.ok(name in properties, `${name} missing from package.json`);
  }
});

test('goldiff.home becomes GOLDIFF_HOME and wins over an inherited one', () => {
  const env = serverEnvironment({ PATH: '/bin', GOLDIFF_HOME: '/old', UNSET: undefined }, ' /data/goldiff ');
  assert.deepEqual(env, { PATH: '/bin', GOLDIFF_HOME: '/data/goldiff', PYTHONUNBUFFERED: '1' });
  assert.equal(serverEnvironment({ GOLDIFF_HOME: '/old' }, '').GOLDIFF_HOME, '/old');
});

test('each provider keeps its own API key', () => {
  assert.notEqual(apiKeySecretName('openai'), apiKeySecretName('anthropic'));
});

test('initializationOptions never carry the API key; the rest is unchanged', () => {
  const { settings } = buildServerSettings(defaults({ mode: 'frontier' }), 'sk-secret');
  const init = withoutApiKey(settings);
  assert.equal(settings.frontier.apiKey, 'sk-secret');
  assert.ok(!JSON.stringify(init).includes('sk-secret'));
  assert.deepEqual({ ...init, frontier: { ...init.frontier, apiKey: 'sk-secret' } }, settings);
});
