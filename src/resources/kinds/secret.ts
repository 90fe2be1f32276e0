/** The Secret kind: a Swarm secret. Its data never appears in logs, status or `get` output. */
export {
  payloadName as secretName,
  payloadSpec as secretSpec,
  type PayloadSpec as SecretSpec,
} from './payload.js';
