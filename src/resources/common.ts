/** Zod building blocks shared by the per-kind schemas. */
import { z } from 'zod';
import { RESERVED_LABEL_PREFIX } from './metadata.js';
import { parseBytes, parseDurationNanos, parseNanoCpus } from './units.js';

/**
 * Swarm object names (services, networks, configs, secrets): letters and digits, with `-`, `_`
 * or `.` only between them, at most 63 characters, as swarmkit validates annotations.
 */
export const swarmObjectName = z
  .string()
  .min(1, 'must not be empty')
  .max(63, 'must be at most 63 characters (Swarm limit)')
  .regex(
    /^[a-zA-Z0-9](?:[-_.]*[a-zA-Z0-9])*$/,
    'must start and end with a letter or digit and contain only letters, digits, "-", "_" and "."',
  );

/** Volume and container names, as the engine validates them: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`. */
export const engineObjectName = z
  .string()
  .min(2, 'must be at least 2 characters (Docker limit)')
  .max(255, 'must be at most 255 characters')
  .regex(
    /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/,
    'must match [a-zA-Z0-9][a-zA-Z0-9_.-]+ (Docker volume and container names)',
  );

/**
 * A single, safe path segment: the rule for User names, which become folder names and parts
 * of Docker object names. Refuses empty names, `.`/`..`, leading dots, separators, NUL,
 * control and whitespace characters, and shell metacharacters; and compatibility characters
 * (fullwidth `ａｌｉｃｅ`, ligatures), which look like another user's name but name another folder.
 */
export const safeSegment = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .refine((s) => s.normalize('NFC') === s, 'must be in Unicode NFC form')
  .refine(
    (s) => s.normalize('NFC') !== s || s.normalize('NFKC') === s,
    'must not contain compatibility characters such as fullwidth letters or ligatures (Unicode NFKC form)',
  )
  .refine((s) => !s.startsWith('.') && !s.startsWith('-'), 'must not start with "." or "-"')
  .refine(
    (s) => /^[\p{L}\p{N}\p{M}._@+-]+$/u.test(s),
    'may contain only letters, digits and "." "_" "@" "+" "-" (no "/", spaces, control or shell characters)',
  );

export const labelKey = z.string().min(1).max(255);

/** Labels people set; the `io.swarmkeeper.` prefix belongs to the controller. */
export const userLabels = z.record(
  labelKey.refine(
    (k) => !k.startsWith(RESERVED_LABEL_PREFIX),
    `keys starting "${RESERVED_LABEL_PREFIX}" are reserved`,
  ),
  z.string(),
);

export const stringMap = z.record(z.string().min(1), z.string());

const SIZE_MESSAGE = 'must be a size such as 512M, 1Gi or a byte count';
const CPU_MESSAGE = 'must be a CPU count above 0, such as 0.5 or 2';

/** `512M`, `1Gi` or a byte count; 1024-based like Docker. */
export const byteSize = z
  .union([z.string(), z.number()], { error: SIZE_MESSAGE })
  .refine((v) => parseBytes(v) !== undefined, { message: SIZE_MESSAGE });

/** A CPU count such as `0.5` or `2`. */
export const cpuCount = z
  .union([z.string(), z.number()], { error: CPU_MESSAGE })
  .refine((v) => parseNanoCpus(v) !== undefined, { message: CPU_MESSAGE });

/** A Go-style duration such as `500ms`, `10s` or `1m30s`. */
export const duration = z.string().refine((v) => parseDurationNanos(v) !== undefined, {
  message: 'must be a duration such as 500ms, 10s or 1m30s',
});

export const port = z.number().int().min(1).max(65535);

/** A command or argument list; compose's string form is not accepted because its shell splitting is ambiguous. */
export const commandList = z.array(z.string());

/** Environment as a map (`{KEY: value}`) or compose's list form (`["KEY=value"]`). */
export const environment = z.union(
  [
    z.record(z.string().regex(/^[^=\0]+$/, 'environment names must not contain "=" or NUL'), z.string()),
    z.array(z.string().regex(/^[^=\0]+=/, 'must have the form NAME=value')),
  ],
  { error: 'must be a map {NAME: "value"} or a list ["NAME=value"]' },
);

/** Linux capabilities, with or without the `CAP_` prefix. */
export const capabilityList = z.array(
  z.string().regex(/^(CAP_)?[A-Z_]+$/, 'must be a capability such as NET_ADMIN'),
);

export const absolutePath = z
  .string()
  .refine((p) => p.startsWith('/'), 'must be an absolute path')
  .refine((p) => !p.includes('\0'), 'must not contain NUL');

export const healthcheck = z.strictObject({
  test: z.union([z.array(z.string()).min(1), z.string().min(1)]).optional(),
  interval: duration.optional(),
  timeout: duration.optional(),
  retries: z.number().int().min(0).optional(),
  startPeriod: duration.optional(),
  disable: z.boolean().optional(),
});

export const metadataSchema = z.strictObject({
  name: z.string().min(1, 'metadata.name is required'),
  labels: userLabels.optional(),
  annotations: z.record(labelKey, z.string()).optional(),
});

export type Metadata = z.infer<typeof metadataSchema>;
