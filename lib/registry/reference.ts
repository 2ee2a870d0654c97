// Which host serves a registry domain, and the names docker gives registries in its credential store
// and on `login`/`logout`. References themselves are parsed by lib/image/reference.ts.

import { DEFAULT_DOMAIN, InvalidReferenceError } from "../image/reference.ts";

/**
 * The host that serves the registry API for a domain: Docker Hub's is not docker.io but
 * RegistrySettings.dockerHubHost (registry-1.docker.io, or an air-gapped pull-through cache).
 */
export function registryHost(domain: string, dockerHubHost: string): string {
  return domain === DEFAULT_DOMAIN ? dockerHubHost : domain;
}

/** The key docker uses in config.json `auths` for a domain. */
export function credentialKey(domain: string): string {
  return domain === DEFAULT_DOMAIN ? "https://index.docker.io/v1/" : domain;
}

/**
 * The registry domain a `login`/`logout` SERVER argument names: docker accepts a bare host[:port]
 * or a URL; no argument, Docker Hub's hosts and its v1 URL all mean Docker Hub.
 */
export function serverDomain(server: string | undefined): string {
  if (!server) return DEFAULT_DOMAIN;
  let host = server.trim().replace(/^[a-z]+:\/\//i, "");
  host = host.split("/")[0];
  if (!host) throw new InvalidReferenceError();
  if (["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"].includes(host)) {
    return DEFAULT_DOMAIN;
  }
  if (!/^(?:[a-zA-Z0-9.-]+|\[[0-9a-fA-F:]+\])(?::\d+)?$/.test(host)) {
    throw new InvalidReferenceError(`invalid registry server "${server}"`);
  }
  return host.toLowerCase();
}
