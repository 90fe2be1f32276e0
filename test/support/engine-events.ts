/**
 * Reading what an engine reported between two instants, through `docker events --since --until`:
 * how tests count the writes that really reached Docker, rather than trusting our own logs.
 */

export interface EngineEvent {
  readonly Type: string;
  readonly Action: string;
  readonly scope?: string;
  readonly Actor?: { readonly Attributes?: { readonly name?: string } };
}

/** Runs the docker CLI against one engine and returns its stdout. */
export type DockerCli = (...args: string[]) => Promise<string>;

export async function engineEventsBetween(
  docker: DockerCli,
  sinceMs: number,
  untilMs: number,
  filters: readonly string[] = [],
): Promise<EngineEvent[]> {
  const out = await docker(
    'events',
    '--since',
    (sinceMs / 1000).toFixed(3),
    '--until',
    (untilMs / 1000).toFixed(3),
    ...filters.flatMap((filter) => ['--filter', filter]),
    '--format',
    '{{json .}}',
  );
  return out
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as EngineEvent);
}
