// The boot unit and what it last did: bootlace.service installed, enabled and ordered after the network is online,
// and the last run's exit code and time from state.json.
import type { RootFs } from "../root/fs";
import type { StateFile } from "../root/state";
import type { CheckResult } from "./check";
import { fail, ok, warn } from "./check";

const UNIT = "bootlace.service";
/** Where systemd looks for units, the administrator's first. */
const UNIT_DIRS = ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];
const WANTS = `/etc/systemd/system/multi-user.target.wants/${UNIT}`;

/** The unit file and its drop-ins, as one text (later lines add to earlier ones, as systemd reads them). */
async function unitText(root: RootFs): Promise<{ path: string; text: string } | undefined> {
  for (const dir of UNIT_DIRS) {
    const text = await root.readText(`${dir}/${UNIT}`);
    if (text === undefined) continue;
    const dropIns = `/etc/systemd/system/${UNIT}.d`;
    const names = ((await root.readDir(dropIns)) ?? []).filter((n) => n.endsWith(".conf")).sort();
    const extra = await Promise.all(names.map((n) => root.readText(`${dropIns}/${n}`)));
    return { path: `${dir}/${UNIT}`, text: [text, ...extra].join("\n") };
  }
  return undefined;
}

/** Whether a directive (After=, Wants=...) names the unit anywhere in the text. */
function names(text: string, directives: string[], unit: string): boolean {
  return text
    .split("\n")
    .map((line) => /^\s*([A-Za-z]+)\s*=(.*)$/.exec(line))
    .some((m) => m !== null && directives.includes(m[1]!) && m[2]!.split(/\s+/).includes(unit));
}

export async function unit(root: RootFs): Promise<CheckResult> {
  const found = await unitText(root);
  if (!found) {
    if (await root.stat("/etc/init.d/bootlace"))
      return ok("unit", "no systemd unit; /etc/init.d/bootlace is installed");
    return fail(
      "unit",
      `${UNIT} is not installed: nothing runs bootlace at boot`,
      "install the .deb or run scripts/install.sh (docs/boot-integration.md)",
    );
  }
  if (!(await root.lstat(WANTS))) {
    return fail(
      "unit",
      `${found.path} is installed but not enabled: it will not run at boot`,
      `systemctl enable ${UNIT}`,
    );
  }
  const after = names(found.text, ["After"], "network-online.target");
  const wants = names(found.text, ["Wants", "Requires"], "network-online.target");
  if (!after || !wants) {
    return warn(
      "unit",
      `${UNIT} is not ${after ? "pulling in" : "ordered after"} network-online.target: it may start before the ` +
        "network is up, and wait for IMDS and AWS until its deadline",
      "Wants=network-online.target and After=network-online.target in [Unit] (the shipped unit has both)",
    );
  }
  return ok("unit", `${UNIT} is enabled and starts after network-online.target`);
}

/** The last run recorded in state.json; one recorded by another instance (baked into the image) is not this one's. */
export function lastRun(state: StateFile | undefined, instanceId: string | undefined): CheckResult {
  if (state && instanceId !== undefined && state.instance_id !== instanceId) {
    return warn(
      "last run",
      `state.json is ${state.instance_id}'s, not this instance's (baked into the image?): bootlace ignores it`,
      "remove /var/lib/bootlace/state.json before baking an image",
    );
  }
  const run = state?.run;
  if (!run) return ok("last run", "no run recorded on this instance yet");
  const changes = `${run.changes} change${run.changes === 1 ? "" : "s"}`;
  if (run.exit_code === 0) return ok("last run", `${run.finished}: exit 0, ${changes}`);
  const failed = run.failed.length > 0 ? `, failed: ${run.failed.join(", ")}` : "";
  return warn(
    "last run",
    `${run.finished}: exit ${run.exit_code}${failed}`,
    "`bootlace status` shows each action's error; `bootlace plan` what a run would do now",
  );
}
