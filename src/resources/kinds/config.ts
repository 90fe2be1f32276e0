/** The Config kind: a Swarm config, e.g. the nginx.conf. */
export {
  payloadName as configName,
  payloadSpec as configSpec,
  type PayloadSpec as ConfigSpec,
} from './payload.js';
