import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadManifests } from '../../src/resources/manifest.js';
import { refOf } from '../../src/resources/resource.js';
import { manifestJsonSchema } from '../../src/resources/schema.js';

describe('the shipped manifests', () => {
  it('manifests/ expresses the whole seed deployment and validates', async () => {
    const set = await loadManifests(['manifests']);
    expect(set.issues).toEqual([]);
    expect(set.resources.map((r) => refOf(r.resource))).toEqual(
      expect.arrayContaining([
        'Network/jupyterhub',
        'Volume/nfsvolume',
        'Volume/nginx_volume',
        'Config/nginx-conf',
        'Service/nginx',
        'Service/jupyterhubserver',
        'Container/letsencrypt-nginx',
        'HomeFolders/nfs',
      ]),
    );
    const nginxConf = set.resources.find((r) => refOf(r.resource) === 'Config/nginx-conf')?.resource;
    expect(nginxConf?.kind === 'Config' && nginxConf.spec.data).toContain('proxy_http_version 1.1');
  });

  it('manifests/examples/local validates', async () => {
    const set = await loadManifests(['manifests/examples/local']);
    expect(set.issues).toEqual([]);
    expect(set.resources.length).toBeGreaterThanOrEqual(10);
  });

  it('manifests/schema/manifest.schema.json is what `swarmkeeper schema` prints', () => {
    const committed: unknown = JSON.parse(readFileSync('manifests/schema/manifest.schema.json', 'utf8'));
    expect(committed).toEqual(manifestJsonSchema());
  });
});
