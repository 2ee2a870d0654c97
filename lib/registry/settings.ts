// What the registry client is configured with, as one object the caller builds and passes in: the
// client reads no environment variable and no configuration file of its own, so one process may
// serve requests with different settings (the CLI builds them from its flags and environment:
// lib/cli/registry_settings.ts; an API server would from its configuration).

export interface RegistrySettings {
  /** dockerd's insecure-registries: host[:port] or IPv4 CIDR spoken to over plain HTTP (loopback always is). */
  insecure: readonly string[];
  /** docker's certs.d: `<certsDir>/<host[:port]>/` holds a registry's CAs and client certificate. */
  certsDir: string;
  /** The host serving Docker Hub's API (its names' domain, docker.io, serves none). */
  dockerHubHost: string;
  /** docker's client configuration directory: config.json with the stored credentials. */
  dockerConfigDir: string;
  /** Milliseconds to wait for response headers and between body chunks. */
  timeoutMs: number;
  /** Extra attempts after a failure that may be transient. */
  retries: number;
  /** Layers downloaded at once. */
  maxConcurrentDownloads: number;
}

export const DEFAULT_REGISTRY_SETTINGS: RegistrySettings = {
  insecure: [],
  certsDir: "/etc/docker/certs.d",
  dockerHubHost: "registry-1.docker.io",
  dockerConfigDir: "/root/.docker",
  timeoutMs: 30_000,
  retries: 4,
  maxConcurrentDownloads: 3,
};
