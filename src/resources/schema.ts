/** The JSON Schema that `swarmkeeper schema` prints, for editors' yaml-language-server. */
import { z } from 'zod';
import { metadataSchema } from './common.js';
import { API_VERSION } from './metadata.js';
import { KIND_DEFINITIONS, KINDS } from './kinds/index.js';

export function manifestJsonSchema(): Record<string, unknown> {
  const documents = KINDS.map((kind) =>
    z.strictObject({
      apiVersion: z.literal(API_VERSION),
      kind: z.literal(kind),
      metadata: metadataSchema.extend({ name: KIND_DEFINITIONS[kind].name }),
      spec: KIND_DEFINITIONS[kind].spec,
    }),
  );
  const union = z.discriminatedUnion('kind', documents as [(typeof documents)[0], ...typeof documents]);
  return {
    $id: 'urn:swarmkeeper:schema:v1:manifest',
    title: 'swarmkeeper manifest',
    ...z.toJSONSchema(union, { unrepresentable: 'any', io: 'input' }),
  };
}
