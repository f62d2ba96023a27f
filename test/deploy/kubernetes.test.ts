// deploy/kubernetes: `kubectl kustomize` renders the base, every rendered object validates offline
// against the Kubernetes OpenAPI schema (kubernetes-models' validators, plus its TypeScript types
// compiled with tsc so that an unknown or misspelt field, which the JSON Schema lets through, is
// an error), and the rendered pod is the one the brief asks for: a native sidecar, probes on the
// admin port, a locked-down securityContext, the guard's config valid for the guard itself.
// No network, no cluster. kubectl: Debian's package on the node machines (/usr/bin/kubectl).

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { loadConfigText } from '../../src/config/load.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BASE = join(ROOT, 'deploy/kubernetes');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [key: string]: unknown };
// Loosely typed views of the rendered objects, for the assertions below.
type AnyRecord = Record<string, any>;

function findKubectl(): string {
  for (const dir of ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(delimiter)]) {
    if (dir && existsSync(join(dir, 'kubectl'))) return join(dir, 'kubectl');
  }
  // No skip, CI or not: the deploy files are only as good as this check.
  throw new Error('kubectl not found: it ships in Debian package "kubectl" on the node machines (apt-get install kubectl), or put any kubectl >= 1.27 on PATH');
}

let objects: Obj[] = [];
const byKind = (kind: string): Obj[] => objects.filter((o) => o.kind === kind);
const one = (kind: string): AnyRecord => {
  const found = byKind(kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0] as AnyRecord;
};

before(() => {
  const kubectl = findKubectl();
  const rendered = execFileSync(kubectl, ['kustomize', BASE], { encoding: 'utf8', timeout: 60_000 });
  const docs = parseAllDocuments(rendered);
  for (const doc of docs) assert.deepEqual(doc.errors, [], 'kubectl kustomize printed valid YAML');
  objects = docs.map((d) => d.toJS() as Obj).filter((o) => o !== null);
});

test('kubectl kustomize renders the expected objects', () => {
  const kinds = objects.map((o) => `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, '-<hash>')}`).sort();
  assert.deepEqual(kinds, [
    'ConfigMap/upload-guard-config-<hash>',
    'Deployment/upload-guard',
    'NetworkPolicy/upload-guard',
    'PersistentVolumeClaim/upload-guard-uploads',
    'Secret/upload-guard-api-keys-<hash>',
    'Service/upload-guard',
  ]);
});

test('every object validates against the Kubernetes schema (kubernetes-models)', async () => {
  for (const object of objects) {
    // "v1" -> kubernetes-models/v1, "apps/v1" -> kubernetes-models/apps/v1, ...
    const models = (await import(`kubernetes-models/${object.apiVersion}`)) as Record<string, new (data: unknown) => { validate(): void }>;
    const Model = models[object.kind];
    assert.ok(Model, `kubernetes-models has no ${object.apiVersion} ${object.kind}`);
    assert.doesNotThrow(() => new Model(object).validate(), `${object.kind}/${object.metadata.name}`);
  }
  // The validator is not a no-op: a wrong type and a bad enum value are refused.
  const { Deployment } = await import('kubernetes-models/apps/v1');
  const broken = structuredClone(one('Deployment'));
  broken.spec.replicas = 'one';
  assert.throws(() => new Deployment(broken).validate());
  const badPolicy = structuredClone(one('Deployment'));
  badPolicy.spec.template.spec.securityContext.seccompProfile = { type: 'Everything' };
  assert.throws(() => new Deployment(badPolicy).validate());
});

test('no object has a field the Kubernetes API does not know (tsc on kubernetes-models types)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ug-k8s-types-'));
  try {
    // The rendered objects as typed literals: TypeScript's excess-property check refuses any
    // field the API types do not declare, at every depth (kubeconform -strict, offline).
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const typeOf = (o: Obj): { module: string; name: string } => ({ module: `kubernetes-models/${o.apiVersion}/${o.kind}`, name: `I${o.kind}` });
    const render = (list: Obj[]): string =>
      list
        .map((o, i) => {
          const t = typeOf(o);
          return `import type { ${t.name} as T${i} } from '${t.module}';\nexport const o${i}: T${i} = ${JSON.stringify(o, null, 2)};\n`;
        })
        .join('\n');
    const compile = (source: string): { status: number | null; output: string } => {
      writeFileSync(join(dir, 'objects.ts'), source);
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({ compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', types: [] }, files: ['objects.ts'] }),
      );
      const run = spawnSync(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8', timeout: 120_000 });
      return { status: run.status, output: `${run.stdout}${run.stderr}` };
    };
    const good = compile(render(objects));
    assert.equal(good.status, 0, good.output);
    // The check bites: a misspelt securityContext field (the classic silent failure) is an error.
    const typo = structuredClone(one('Deployment')) as Obj & AnyRecord;
    typo.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true;
    const bad = compile(render([typo]));
    assert.notEqual(bad.status, 0, 'a misspelt field must not type-check');
    assert.match(bad.output, /readOnlyRootFileSystem/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the uploader and upload-guard share a pod; the guard is a native sidecar', () => {
  const pod = one('Deployment').spec.template.spec;
  assert.equal(pod.initContainers.length, 1);
  const guard = pod.initContainers[0];
  assert.equal(guard.name, 'upload-guard');
  assert.equal(guard.restartPolicy, 'Always', 'native sidecar: an init container with restartPolicy Always');
  assert.match(guard.image, /^upload-guard:/);
  assert.deepEqual(guard.ports.map((p: AnyRecord) => p.containerPort).sort(), [8080, 9090]);
  assert.equal(pod.containers.length, 1);
  const app = pod.containers[0];
  const env = Object.fromEntries(app.env.map((e: AnyRecord) => [e.name, e.value]));
  assert.equal(env.HOST, '127.0.0.1', 'the uploader listens on loopback only');
  assert.equal(env.PORT, '5000');
  assert.equal(app.ports, undefined, 'the uploader exposes no port');

  // Probes on the admin port: liveness /healthz, readiness /readyz.
  assert.deepEqual(guard.livenessProbe.httpGet, { path: '/healthz', port: 'admin' });
  assert.deepEqual(guard.readinessProbe.httpGet, { path: '/readyz', port: 'admin' });
  assert.equal(guard.ports.find((p: AnyRecord) => p.name === 'admin').containerPort, 9090);

  for (const c of [guard, app]) {
    assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory, `${c.name}: resources`);
    assert.deepEqual(
      c.securityContext,
      { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
      `${c.name}: securityContext`,
    );
  }
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
  assert.equal(pod.automountServiceAccountToken, false);
  const annotations = one('Deployment').spec.template.metadata.annotations;
  assert.equal(annotations['prometheus.io/scrape'], 'true');
  assert.equal(annotations['prometheus.io/port'], '9090');
});

test('the guard config in the ConfigMap is valid for the guard, and its paths are mounted', () => {
  const deployment = one('Deployment');
  const pod = deployment.spec.template.spec;
  const guard = pod.initContainers[0];
  const volumes = Object.fromEntries(pod.volumes.map((v: AnyRecord) => [v.name, v]));
  const mounts = Object.fromEntries(guard.volumeMounts.map((m: AnyRecord) => [m.mountPath, m]));

  // --config names the file the ConfigMap volume provides.
  const configArg = guard.args[guard.args.indexOf('--config') + 1] as string;
  const configDir = configArg.slice(0, configArg.lastIndexOf('/'));
  const configMap = one('ConfigMap');
  assert.equal(volumes[mounts[configDir].name].configMap.name, configMap.metadata.name);
  const text = configMap.data[configArg.slice(configDir.length + 1)] as string;
  assert.ok(text, `ConfigMap has ${configArg}`);

  // The API key file is the Secret's key, mounted read-only.
  const keyPath = /file:\s*(\/run\/secrets\/[^"\s]+)/.exec(text)?.[1];
  assert.ok(keyPath, 'the config reads its API key from a file under /run/secrets');
  const keyDir = keyPath.slice(0, keyPath.lastIndexOf('/'));
  const secretMount = mounts[keyDir];
  assert.equal(secretMount.readOnly, true);
  const secret = one('Secret');
  assert.equal(volumes[secretMount.name].secret.secretName, secret.metadata.name);
  assert.ok(keyPath.slice(keyDir.length + 1) in secret.data, 'the Secret has the key file the config reads');
  assert.equal(Buffer.from(secret.data[keyPath.slice(keyDir.length + 1)], 'base64').toString(), '', 'the base ships no usable key');

  // With a key in place, the guard's own loader accepts the config (as `check-config` would).
  const dir = mkdtempSync(join(tmpdir(), 'ug-k8s-key-'));
  try {
    writeFileSync(join(dir, 'api-key'), 'a-real-key\n');
    const loaded = loadConfigText(text.replaceAll(keyPath, join(dir, 'api-key')), 'configmap:config.yaml');
    assert.ok('config' in loaded, 'errors' in loaded ? loaded.errors.join('\n') : '');
    const config = loaded.config;
    assert.equal(config.upstream.url.origin, 'http://127.0.0.1:5000');
    assert.equal(config.listen.port, 8080);
    // The spool dir is an emptyDir; the storage watch sees the uploads volume.
    for (const route of config.routes) {
      const spool = mounts[route.policy.spoolDir];
      assert.ok(spool, `spoolDir ${route.policy.spoolDir} is mounted`);
      assert.ok(volumes[spool.name].emptyDir, 'spoolDir is an emptyDir');
    }
    if (config.storage) {
      assert.equal(mounts[config.storage.path]?.readOnly, true, `storage.path ${config.storage.path} is the uploads volume, read-only`);
    }
    // The base's empty key is refused: the pod cannot run with it.
    writeFileSync(join(dir, 'api-key'), '');
    const empty = loadConfigText(text.replaceAll(keyPath, join(dir, 'api-key')), 'configmap:config.yaml');
    assert.ok('errors' in empty && empty.errors.some((e) => /empty/.test(e)), JSON.stringify(empty));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(/admin:\s*\{\s*listen:\s*0\.0\.0\.0:9090/.test(text), 'admin listens on the pod IP for probes and scrapes');
});

test('the Service exposes only the guard; the NetworkPolicy lets in the guard port and monitoring', () => {
  const service = one('Service');
  assert.deepEqual(service.spec.ports.map((p: AnyRecord) => p.targetPort), [8080]);
  assert.deepEqual(service.spec.selector, one('Deployment').spec.selector.matchLabels);

  const policy = one('NetworkPolicy');
  assert.deepEqual(policy.spec.podSelector.matchLabels, one('Deployment').spec.selector.matchLabels);
  assert.ok(policy.spec.policyTypes.includes('Ingress'));
  const rules = policy.spec.ingress as AnyRecord[];
  const open = rules.filter((r) => r.from === undefined);
  assert.deepEqual(open.flatMap((r) => r.ports.map((p: AnyRecord) => p.port)), [8080], 'only the guard port is open to all');
  const monitoring = rules.filter((r) => r.from !== undefined);
  assert.equal(monitoring.length, 1);
  assert.deepEqual(monitoring[0]!.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
  assert.deepEqual(monitoring[0]!.ports.map((p: AnyRecord) => p.port), [9090]);
});
