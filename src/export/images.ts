/**
 * What an image puts into the containers made from it (env, command, labels, health check), so
 * a container's export can leave those out. The observed reader has no image call; this one read
 * goes through the same local-only client (src/observed/docker-client.ts).
 */
import type { Docker } from '../observed/docker-client.js';
import type { ImageDefaults } from './swarm.js';

/** The image's config, or undefined when the image is gone (removed after the container was made). */
export type ImageInspector = (image: string) => Promise<ImageDefaults | undefined>;

export function dockerImageInspector(docker: Docker, timeoutMs = 30_000): ImageInspector {
  const cache = new Map<string, Promise<ImageDefaults | undefined>>();
  return (image) => {
    let pending = cache.get(image);
    if (pending === undefined) {
      const timeout = new Promise<undefined>((resolve) =>
        setTimeout(() => resolve(undefined), timeoutMs).unref(),
      );
      pending = Promise.race([
        docker
          .getImage(image)
          .inspect()
          .then(
            (info) => info.Config as ImageDefaults,
            () => undefined,
          ),
        timeout,
      ]);
      cache.set(image, pending);
    }
    return pending;
  };
}
