/** The registry of kinds: each kind's name rule and spec schema, in dependency order. */
import type { z } from 'zod';
import { containerName, containerSpec } from './container.js';
import { configName, configSpec } from './config.js';
import { homeFoldersName, homeFoldersSpec } from './homefolders.js';
import { networkName, networkSpec } from './network.js';
import { secretName, secretSpec } from './secret.js';
import { serviceName, serviceSpec } from './service.js';
import { userName, userSpec } from './user.js';
import { volumeName, volumeSpec } from './volume.js';

export const KIND_DEFINITIONS = {
  Network: { name: networkName, spec: networkSpec },
  Volume: { name: volumeName, spec: volumeSpec },
  Config: { name: configName, spec: configSpec },
  Secret: { name: secretName, spec: secretSpec },
  HomeFolders: { name: homeFoldersName, spec: homeFoldersSpec },
  Service: { name: serviceName, spec: serviceSpec },
  Container: { name: containerName, spec: containerSpec },
  User: { name: userName, spec: userSpec },
} as const satisfies Record<string, { name: z.ZodType<string>; spec: z.ZodType }>;

export type Kind = keyof typeof KIND_DEFINITIONS;

/** Kinds in the order their objects must exist: what others refer to comes first. */
export const KINDS = Object.keys(KIND_DEFINITIONS) as Kind[];

export type SpecOf<K extends Kind> = z.infer<(typeof KIND_DEFINITIONS)[K]['spec']>;

export function isKind(value: string): value is Kind {
  return Object.hasOwn(KIND_DEFINITIONS, value);
}

/** Kinds whose spec holds data that must never be printed or logged. */
export const SENSITIVE_KINDS: ReadonlySet<Kind> = new Set<Kind>(['Secret']);
