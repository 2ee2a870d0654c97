// The registry settings of one CLI command: dockerd's defaults, /etc/docker/daemon.json's
// insecure-registries, the global --insecure-registry flags, and the environment:
//   SKIFF_INSECURE_REGISTRIES  more insecure registries (comma-separated)
//   SKIFF_CERTS_DIR            instead of /etc/docker/certs.d
//   SKIFF_DOCKER_HUB_HOST      Docker Hub's API host (an air-gapped mirror; the tests point it at a
//                              closed loopback port so that no test can reach the internet)
//   DOCKER_CONFIG, HOME        where config.json is, as docker's CLI finds it
//   SKIFF_REGISTRY_TIMEOUT (s), SKIFF_REGISTRY_RETRIES, SKIFF_MAX_CONCURRENT_DOWNLOADS

import { join } from "../path.ts";
import { DEFAULT_REGISTRY_SETTINGS, type RegistrySettings } from "../registry/settings.ts";

function envNumber(name: string): number | undefined {
  const v = Deno.env.get(name);
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function daemonJsonInsecure(): string[] {
  try {
    const daemon = JSON.parse(Deno.readTextFileSync("/etc/docker/daemon.json"));
    return Array.isArray(daemon["insecure-registries"]) ? daemon["insecure-registries"].map(String) : [];
  } catch {
    return []; // absent or unreadable: none
  }
}

export function registrySettingsFromEnvironment(insecureFlags: readonly string[] = []): RegistrySettings {
  const d = DEFAULT_REGISTRY_SETTINGS;
  const listed = (Deno.env.get("SKIFF_INSECURE_REGISTRIES") ?? "").split(",").map((s) => s.trim());
  const insecure = [...daemonJsonInsecure(), ...listed, ...insecureFlags]
    .filter(Boolean)
    .map((s) => s.replace(/^https?:\/\//, "").replace(/\/+$/, ""));
  const timeout = envNumber("SKIFF_REGISTRY_TIMEOUT");
  const downloads = envNumber("SKIFF_MAX_CONCURRENT_DOWNLOADS");
  return {
    insecure,
    certsDir: Deno.env.get("SKIFF_CERTS_DIR") ?? d.certsDir,
    dockerHubHost: Deno.env.get("SKIFF_DOCKER_HUB_HOST") || d.dockerHubHost,
    dockerConfigDir: Deno.env.get("DOCKER_CONFIG") || join(Deno.env.get("HOME") ?? "/root", ".docker"),
    timeoutMs: timeout ? timeout * 1000 : d.timeoutMs,
    retries: envNumber("SKIFF_REGISTRY_RETRIES") ?? d.retries,
    maxConcurrentDownloads: downloads && Number.isInteger(downloads) && downloads > 0
      ? downloads
      : d.maxConcurrentDownloads,
  };
}
