// `skiff inspect` of an image: docker's image inspect shape, fields in docker's order.

import { join } from "../path.ts";
import { goStruct } from "../format/template.ts";
import type { ImageRecord } from "../state/types.ts";

type Json = Record<string, unknown>;

/**
 * The docker-shaped inspect object of an image. `layerDirs` are the unpacked layer directories,
 * top-most first (ImageStore.layerDirs), shown as docker's overlay2 GraphDriver data.
 */
export function inspectImage(image: ImageRecord, layerDirs: string[]): Json {
  const blob = image.config;
  const run = blob.config ?? {};
  const history = blob.history ?? [];
  const config: Json = {
    Hostname: "",
    Domainname: "",
    User: run.User ?? "",
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ...(run.ExposedPorts ? { ExposedPorts: run.ExposedPorts } : {}),
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: run.Env ?? null,
    Cmd: run.Cmd ?? null,
    ...(run.Healthcheck ? { Healthcheck: run.Healthcheck } : {}),
    Image: run.Image ?? "",
    Volumes: run.Volumes ?? null,
    WorkingDir: run.WorkingDir ?? "",
    Entrypoint: run.Entrypoint ?? null,
    OnBuild: run.OnBuild ?? null,
    Labels: run.Labels ?? null,
    ...(run.StopSignal ? { StopSignal: run.StopSignal } : {}),
    ...(run.Shell ? { Shell: run.Shell } : {}),
  };
  const data: Json = {};
  if (layerDirs.length > 1) data.LowerDir = layerDirs.slice(1).join(":");
  if (layerDirs.length > 0) {
    const top = layerDirs[0].replace(/\/diff$/, "");
    Object.assign(data, {
      MergedDir: join(top, "merged"),
      UpperDir: layerDirs[0],
      WorkDir: join(top, "work"),
    });
  }
  const out: Json = {
    Id: image.id,
    RepoTags: image.repoTags ?? [],
    RepoDigests: image.repoDigests ?? [],
    Parent: image.parent ?? "",
    Comment: history.length ? history[history.length - 1].comment ?? "" : "",
    Created: blob.created ?? image.created,
    DockerVersion: "",
    Author: blob.author ?? "",
    Config: goStruct("*container.Config", config),
    Architecture: blob.architecture ?? "",
  };
  if (blob.variant) out.Variant = blob.variant;
  Object.assign(out, {
    Os: blob.os ?? "",
    Size: image.size ?? 0,
    GraphDriver: goStruct("storage.DriverData", { Data: data, Name: "overlay2" }),
    RootFS: goStruct("image.RootFS", { Type: "layers", Layers: blob.rootfs?.diff_ids ?? [] }),
    Metadata: goStruct("image.Metadata", { LastTagTime: "0001-01-01T00:00:00Z" }),
  });
  return goStruct("image.InspectResponse", out);
}
