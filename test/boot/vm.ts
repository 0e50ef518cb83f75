// One boot of the test guest under QEMU (scripts/boot-image.sh makes the images): user-mode networking only, with
// two restricted NICs whose sole ways out are QEMU's per-connection forwards to the host's loopback emulators —
// 169.254.169.254:80 to the IMDS emulator and 10.0.2.100:80 (the guest's AWS_ENDPOINT_URL) to the AWS fidelity
// proxy — a 9p share for results and the host's word to power off, and the serial console in a file.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";

export type Variant = "systemd" | "initd";

export interface VmOptions {
  /** The folder scripts/boot-image.sh printed. */
  images: string;
  variant: Variant;
  /** A qcow2 overlay (from createOverlay) the boot writes to and keeps; without one the image boots with snapshot=on. */
  overlay?: string;
  /** Host folder shared with the guest as /mnt/bootlace-test; must be empty. */
  share: string;
  /** Host loopback ports the guest's two forwards connect to. */
  imdsPort: number;
  awsPort: number;
  /** Where the serial console goes. */
  console: string;
  /** Hard limit on the whole boot, power-off included: timeout(1) stops QEMU after it. */
  limitMs: number;
}

export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Wall time from QEMU's start to its exit. */
  ms: number;
}

export interface Vm {
  /** Resolves (with the ms since QEMU's start) once the guest's reporter has written out/ready; rejects if QEMU exits
   * first or after timeoutMs. */
  ready(timeoutMs: number): Promise<number>;
  /** Tells the guest to power off ("graceful": units stop; "force": nothing stops) and waits for QEMU to exit; QEMU
   * is stopped if it does not. */
  powerOff(how: "graceful" | "force", timeoutMs: number): Promise<VmExit>;
  /** Stops QEMU (through its timeout(1), by pid) if it still runs. */
  kill(): Promise<void>;
  /** The console so far. */
  consoleText(): string;
}

const GUEST_SHARE_TAG = "bootlace-test";

/** KVM only where a stock kernel really boots on it: a CPU with vmx/svm and no paravirtual (PVM) KVM module. */
export function accelerator(): "kvm" | "tcg" {
  try {
    const flags = /^flags\s*:.*\b(vmx|svm)\b/m.test(readFileSync("/proc/cpuinfo", "utf8"));
    if (flags && !existsSync("/sys/module/kvm_pvm") && existsSync("/dev/kvm")) return "kvm";
  } catch {
    // no /proc/cpuinfo: no KVM either
  }
  return "tcg";
}

/** A qcow2 overlay on the read-only cached image: the boots of one test run share it, the cache stays pristine. */
export function createOverlay(images: string, variant: Variant, path: string): void {
  const r = spawnSync(
    "qemu-img",
    ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", join(images, `${variant}.img`), path],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`qemu-img create ${path} failed: ${r.stderr || String(r.error)}`);
}

/** A forward's command, run by QEMU for each guest connection with the connection as its stdin and stdout. */
function pipeTo(port: number): string {
  // Nothing may reach stderr: it is the guest's connection too.
  return `cmd:socat -lf /dev/null - TCP:127.0.0.1:${port}`;
}

export async function startVm(o: VmOptions): Promise<Vm> {
  await mkdir(join(o.share, "out"), { recursive: true });
  await mkdir(join(o.share, "in"), { recursive: true });
  const accel = accelerator();
  const disk = o.overlay
    ? `file=${o.overlay},if=virtio,format=qcow2`
    : `file=${join(o.images, `${o.variant}.img`)},if=virtio,format=raw,snapshot=on`;
  const args = [
    ...(accel === "kvm" ? ["-accel", "kvm", "-cpu", "host"] : ["-accel", "tcg,thread=multi", "-cpu", "max"]),
    ["-smp", "2", "-m", "1024", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"],
    ["-kernel", join(o.images, "vmlinuz"), "-initrd", join(o.images, "initrd.img")],
    // quiet: the console carries the journal (with timestamps), not the kernel's log or systemd's status lines.
    ["-append", "root=/dev/vda rw console=ttyS0 panic=-1 quiet systemd.show_status=false"],
    ["-drive", disk],
    // NIC 1: DHCP and the default route; its only way out is the forward of the private AWS endpoint.
    "-netdev",
    `user,id=aws,net=10.0.2.0/24,ipv6=off,restrict=on,guestfwd=tcp:10.0.2.100:80-${pipeTo(o.awsPort)}`,
    ["-device", "virtio-net-pci,netdev=aws,mac=52:54:00:12:34:56"],
    // NIC 2: the link-local network of the instance metadata service.
    "-netdev",
    `user,id=imds,net=169.254.169.0/24,host=169.254.169.1,ipv6=off,restrict=on,guestfwd=tcp:169.254.169.254:80-${pipeTo(o.imdsPort)}`,
    ["-device", "virtio-net-pci,netdev=imds,mac=52:54:00:a9:fe:fe"],
    ["-device", "virtio-rng-pci"],
    ["-virtfs", `local,path=${o.share},mount_tag=${GUEST_SHARE_TAG},security_model=none,id=share`],
    ["-serial", `file:${o.console}`],
  ].flat();

  const started = Date.now();
  // Under timeout(1), so that even a test runner killed outright leaves no QEMU behind for longer than limitMs;
  // SIGTERM to timeout reaches QEMU, which exits at once.
  const limitS = String(Math.ceil(o.limitMs / 1000));
  const child: ChildProcess = spawn("timeout", ["--kill-after=10", limitS, "qemu-system-x86_64", ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const exited = new Promise<VmExit>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve({ code, signal, ms: Date.now() - started }));
  });
  if (child.pid === undefined) {
    const error = await exited.then(
      () => "no process",
      (e: unknown) => String(e),
    );
    throw new Error(`qemu-system-x86_64 did not start: ${error}`);
  }

  const consoleText = (): string => (existsSync(o.console) ? readFileSync(o.console, "utf8") : "");
  const tail = (): string => consoleText().split("\n").slice(-40).join("\n");
  const why = (what: string): Error =>
    new Error(`${what}${stderr ? `\nQEMU said: ${stderr.trim()}` : ""}\nthe console's last lines:\n${tail()}`);
  const timeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(why(`${what}: no answer within ${ms / 1000} s`)), ms);
    });
    return Promise.race([p, expired]).finally(() => clearTimeout(timer));
  };
  const waitExit = async (timeoutMs: number, what: string): Promise<VmExit> => {
    const exit = await timeout(exited, timeoutMs, what);
    if (exit.code === 124 || exit.code === 137) throw why(`QEMU was stopped after its limit of ${limitS} s`);
    if (exit.code !== 0) throw why(`QEMU exited with ${exit.code ?? exit.signal}`);
    return exit;
  };

  const kill = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const gone = await timeout(exited, 15_000, "QEMU's exit after SIGTERM").catch(() => undefined);
    if (!gone) child.kill("SIGKILL");
  };

  return {
    consoleText,
    async ready(timeoutMs) {
      const readyFile = join(o.share, "out", "ready");
      const deadline = Date.now() + timeoutMs;
      while (!existsSync(readyFile)) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw why(`the guest powered off before it reported (QEMU exit ${child.exitCode ?? child.signalCode})`);
        }
        if (Date.now() > deadline)
          throw why(`the guest's report (out/ready in the share): none within ${timeoutMs / 1000} s`);
        await new Promise((r) => setTimeout(r, 500));
      }
      return Date.now() - started;
    },
    async powerOff(how, timeoutMs) {
      const word = join(o.share, "in", "poweroff");
      writeFileSync(`${word}.tmp`, how);
      renameSync(`${word}.tmp`, word);
      return waitExit(timeoutMs, `the guest's ${how} power-off`).catch(async (e: unknown) => {
        await kill();
        throw e;
      });
    },
    kill,
  };
}
