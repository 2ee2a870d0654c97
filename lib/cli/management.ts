// `skiff container` and `skiff image` without a known subcommand: docker's management-command help.
// The subcommands themselves are main.ts's ALIASES (`container stop` → `stop`). As docker's CLI:
// --help prints to stdout (exit 0); no subcommand prints to stderr (exit 0); an unknown one prints
// to stderr and exits 1.

import type { Verb } from "./context.ts";

const CONTAINER_COMMANDS: [string, string][] = [
  ["attach", "Attach local standard input, output, and error streams to a running container"],
  ["commit", "Create a new image from a container's changes"],
  ["cp", "Copy files/folders between a container and the local filesystem"],
  ["create", "Create a new container"],
  ["diff", "Inspect changes to files or directories on a container's filesystem"],
  ["exec", "Run a command in a running container"],
  ["export", "Export a container's filesystem as a tar archive"],
  ["inspect", "Display detailed information on one or more containers"],
  ["kill", "Kill one or more running containers"],
  ["logs", "Fetch the logs of a container"],
  ["ls", "List containers"],
  ["pause", "Pause all processes within one or more containers"],
  ["port", "List port mappings or a specific mapping for the container"],
  ["prune", "Remove all stopped containers"],
  ["rename", "Rename a container"],
  ["restart", "Restart one or more containers"],
  ["rm", "Remove one or more containers"],
  ["run", "Run a command in a new container"],
  ["start", "Start one or more stopped containers"],
  ["stats", "Display a live stream of container(s) resource usage statistics"],
  ["stop", "Stop one or more running containers"],
  ["top", "Display the running processes of a container"],
  ["unpause", "Unpause all processes within one or more containers"],
  ["update", "Update configuration of one or more containers"],
  ["wait", "Block until one or more containers stop, then print their exit codes"],
];

const IMAGE_COMMANDS: [string, string][] = [
  ["build", "Build an image from a Dockerfile"],
  ["history", "Show the history of an image"],
  ["import", "Import the contents from a tarball to create a filesystem image"],
  ["inspect", "Display detailed information on one or more images"],
  ["load", "Load an image from a tar archive or STDIN"],
  ["ls", "List images"],
  ["prune", "Remove unused images"],
  ["pull", "Pull an image or a repository from a registry"],
  ["push", "Push an image or a repository to a registry"],
  ["rm", "Remove one or more images"],
  ["save", "Save one or more images to a tar archive (streamed to STDOUT by default)"],
  ["tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"],
];

/** docker's management-command help text. */
export function managementHelp(command: string, what: string, commands: [string, string][]): string {
  const lines = commands.map(([name, text]) => `  ${name.padEnd(12)}${text}`);
  return `\nUsage:  skiff ${command} COMMAND\n\n${what}\n\nCommands:\n${lines.join("\n")}\n\n` +
    `Run 'skiff ${command} COMMAND --help' for more information on a command.\n`;
}

function management(command: string, what: string, commands: [string, string][]): Verb {
  return (args) => {
    const help = managementHelp(command, what, commands);
    if (args[0] === "--help" || args[0] === "-h") {
      console.log(help);
      return Promise.resolve(0);
    }
    console.error(help);
    return Promise.resolve(args.length ? 1 : 0);
  };
}

export const containerVerb = management("container", "Manage containers", CONTAINER_COMMANDS);
export const imageVerb = management("image", "Manage images", IMAGE_COMMANDS);
