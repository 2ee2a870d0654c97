// What a container holds on the host, as one list (resources_core.ts), with the network's releases
// (network/nat.ts, bridge.ts) in it: every caller but a foreground run of a container without an
// endpoint of its own imports this module.

import { releaseEndpoint } from "../network/bridge.ts";
import { unpublishPorts } from "../network/nat.ts";
import { registerNetworkRelease } from "./resources_core.ts";

registerNetworkRelease({ unpublishPorts, releaseEndpoint });

export * from "./resources_core.ts";
