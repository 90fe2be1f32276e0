import { z } from 'zod';
import { byteSize, safeSegment, swarmObjectName } from '../common.js';

export const userName = safeSegment;

/** A JupyterHub user whose home folder, e-mail file and quota the controller keeps. */
export const userSpec = z.strictObject({
  email: z.email({ error: 'must be an e-mail address' }).optional(),
  /** Overrides the HomeFolders default; `0` means no limit. */
  quota: byteSize.optional(),
  /** Which HomeFolders the user lives on; by default the only one. */
  homeFolders: swarmObjectName.optional(),
});

export type UserSpec = z.infer<typeof userSpec>;
