import { runAgent } from "../../agent/agent";
import { parseCli } from "../../agent/cli";

async function agent(argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runAgent({ argv, env: {}, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe("the command line", () => {
  it.each(["run", "plan", "stop", "validate", "status", "iam-policy", "watch", "doctor"])(
    "%s --help describes the command and its options",
    async (command) => {
      const result = await agent([command, "--help"]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`bootlace ${command}`);
      expect(result.stdout).toContain("--deadline");
    },
  );

  it("refuses an unknown command or option with exit 2 and one line", async () => {
    for (const argv of [["launch"], ["run", "--dedline", "5"], []]) {
      const result = await agent(argv);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toMatch(/^bootlace: .*\(see bootlace --help\)\n$/);
    }
  });

  it.each([
    [["run", "--dedline", "5"], "unknown option --dedline; did you mean --deadline?"],
    [["stauts"], 'unknown command "stauts"; did you mean status?'],
    [["run", "--json=yes"], "--json takes no value"],
    [["run", "--root"], "--root needs a value"],
    [["run", "--deadline", "-3"], '--deadline: a value that starts with "-" is written --deadline=VALUE'],
    [["status", "extra"], "status takes no argument: extra"],
    [["validate", "a.yaml", "b.yaml"], "validate takes one argument: a.yaml b.yaml"],
    [["plan", "--log-level", "loud"], '--log-level is "loud": choose from debug, info, warn, error'],
  ])("%j is refused with what was wrong: %s", async (argv, message) => {
    const result = await agent(argv);
    expect(result).toEqual({ code: 2, stdout: "", stderr: `bootlace: ${message} (see bootlace --help)\n` });
  });

  it("takes options before or after the command, -h for --help, and validate's file", async () => {
    expect(await parseCli(["--root", "/r", "validate", "c.yaml", "--log-format", "json"])).toMatchObject({
      kind: "command",
      command: "validate",
      file: "c.yaml",
      args: { root: "/r", logFormat: "json" },
    });
    expect(await parseCli(["run", "--deadline=0.5"])).toMatchObject({ args: { deadline: 0.5 } });
    expect((await agent(["-h"])).stdout).toBe((await agent(["--help"])).stdout);
  });

  it("wraps the help to the width it is given, keeping every word", async () => {
    for (const width of [60, 100, 120]) {
      const parsed = await parseCli(["--help"], width);
      if (parsed.kind !== "output") throw new Error("no help");
      const lines = parsed.text.trimEnd().split("\n");
      expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(width);
      expect(parsed.text.replace(/\s+/g, " ")).toContain(
        "Print the least-privilege IAM policy JSON for the effective configuration",
      );
    }
  });

  it("refuses a deadline that is not a positive number", async () => {
    for (const value of ["0", "-3", "soon"]) {
      const result = await agent(["run", "--deadline", value]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/deadline/);
    }
  });

  it("reads global options into one typed object", async () => {
    const parsed = await parseCli([
      "plan",
      "--root",
      "/tmp/r",
      "--json",
      "--set",
      "dns.wait=none",
      "--set",
      "a.b=1",
      "--profile",
      "web",
    ]);
    expect(parsed).toEqual({
      kind: "command",
      command: "plan",
      args: {
        root: "/tmp/r",
        json: true,
        logFormat: "text",
        logLevel: "info",
        deadline: 300,
        set: ["dns.wait=none", "a.b=1"],
        profile: "web",
      },
    });
  });

  it("prints the version", async () => {
    const result = await agent(["--version"]);
    expect(result).toEqual({ code: 0, stdout: "0.1.0\n", stderr: "" });
  });

  it("status says plainly when nothing has run yet, and prints JSON null with --json", async () => {
    const root = `/tmp/bootlace-cli-${process.pid}-nothing-here`;
    expect(await agent(["status", "--root", root])).toMatchObject({ code: 0, stdout: "no run recorded yet\n" });
    expect(await agent(["status", "--root", root, "--json"])).toMatchObject({ code: 0, stdout: "null\n" });
  });
});
