// The docker peer (../shared/peers/setup-peers.sh up writes /tmp/peers/env.sh), for tests that hold
// skiff's exit codes and words against docker's own where it runs. Absent: those tests say so and
// return; skiff's side is asserted on its own elsewhere.

export interface PeerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** docker's command line (PEER_DOCKER), or undefined when the peer was never set up here. */
export const peerDocker: string[] | undefined = (() => {
  try {
    const m = /^export PEER_DOCKER="?([^"\n]*)"?$/m.exec(Deno.readTextFileSync("/tmp/peers/env.sh"));
    return m ? m[1].split(/\s+/) : undefined;
  } catch {
    return undefined;
  }
})();

/** Runs `docker ARGS…` of the peer; code -1 when it cannot be started. */
export async function docker(args: string[]): Promise<PeerResult> {
  if (!peerDocker) return { code: -1, stdout: "", stderr: "" };
  try {
    const out = await new Deno.Command(peerDocker[0], {
      args: [...peerDocker.slice(1), ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
  } catch {
    return { code: -1, stdout: "", stderr: "" };
  }
}

/** Whether the peer's daemon answers and has the busybox image (localhost/bb:latest) the tests use. */
export async function peerDockerReady(): Promise<boolean> {
  if ((await docker(["image", "inspect", "localhost/bb:latest"])).code === 0) return true;
  console.log("docker peer with localhost/bb is not running (/tmp/peers/env.sh): skipped");
  return false;
}
