/**
 * Image reference comparison. `docker service create` pins the digest it resolved
 * (`nginx:1.27` is read back as `nginx:1.27@sha256:…`) and adds the implicit `:latest`; a
 * comparison that missed either would update every service on every pass (moby/moby #30844).
 */

export interface ImageReference {
  /** In Docker's familiar form: `nginx`, not `docker.io/library/nginx`. */
  readonly name: string;
  readonly tag?: string;
  readonly digest?: string;
}

const DOCKER_HUB_PREFIXES = [
  'docker.io/library/',
  'index.docker.io/library/',
  'docker.io/',
  'index.docker.io/',
];

export function parseImageReference(reference: string): ImageReference {
  let rest = reference.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  // A colon before the last slash belongs to a registry port (`registry:5000/app`), not a tag.
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const prefix = DOCKER_HUB_PREFIXES.find((p) => rest.startsWith(p));
  const name = prefix === undefined ? rest : rest.slice(prefix.length);
  return { name, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/**
 * Whether an observed image satisfies a desired one.
 * - A desired digest must be matched exactly (a tag on either side must then agree too).
 * - Without a desired digest, the observed digest is Swarm's pin and is ignored; tags are
 *   compared with Docker's implicit `latest`.
 * - An observed `name@sha256:…` with no tag cannot be shown to be the desired tag, so it differs.
 */
export function imagesEqual(desired: string, observed: string): boolean {
  const want = parseImageReference(desired);
  const have = parseImageReference(observed);
  if (want.name !== have.name) return false;
  if (want.digest !== undefined) {
    if (have.digest !== want.digest) return false;
    return want.tag === undefined || have.tag === undefined || want.tag === have.tag;
  }
  const wantTag = want.tag ?? 'latest';
  const haveTag = have.tag ?? (have.digest === undefined ? 'latest' : undefined);
  return wantTag === haveTag;
}
