/** The pino logger: fixed messages, variables in fields, secrets redacted wherever they might appear. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Field paths that may hold secret material; pino replaces their values before anything is written. */
export const REDACTED_PATHS = [
  'password',
  'token',
  '*.password',
  '*.token',
  'spec.data',
  'resource.spec.data',
  'secret',
  '*.secret',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options = {
    level,
    base: { app: 'swarmkeeper' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
