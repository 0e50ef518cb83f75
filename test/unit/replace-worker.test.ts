// Configured patterns run in a worker that is stopped at the deadline, even in the middle of a regex.
import { applyReplace } from "../../agent/files/edit";
import { applyReplaceStoppable, ReplaceStoppedError } from "../../agent/files/replace-worker";

jest.setTimeout(30_000);

const php = "<?php\ndefine('DB_HOST', 'localhost');\r\ndefine('DB_NAME', 'app');\nlast";

test("gives what applyReplace gives", async () => {
  const edits = [
    { match: /define\('DB_HOST', '[^']*'\)/, with: "define('DB_HOST', '10.0.0.5')" },
    { match: /app/i, with: "$&-x" },
    { match: /nothing/, with: "y" },
  ];
  const r = await applyReplaceStoppable(php, edits, new AbortController().signal);
  expect(r).toEqual(applyReplace(php, edits));
  expect(r.matched).toEqual([1, 1, 0]);
});

test("a pattern that backtracks without end is stopped at the deadline, naming the edit", async () => {
  const deadline = new AbortController();
  const line = `${"a".repeat(40)}!\n`;
  const running = applyReplaceStoppable(
    line,
    [
      { match: /a/, with: "a" },
      { match: /(a+)+$/, with: "b" },
    ],
    deadline.signal,
  );
  setTimeout(() => deadline.abort(), 300);
  const error: unknown = await running.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ReplaceStoppedError);
  expect((error as ReplaceStoppedError).edit).toBe(1);
});

test("a pattern that backtracks holds only its own file: an edit queued behind it runs once its slot is over", async () => {
  const deadline = new AbortController();
  const slow = applyReplaceStoppable(`${"a".repeat(40)}!\n`, [{ match: /(a+)+$/, with: "b" }], deadline.signal);
  const queued = applyReplaceStoppable("x\n", [{ match: /x/, with: "y" }], deadline.signal);
  // The queued edit is done while the slow pattern still runs; only then does the deadline come.
  await expect(queued).resolves.toEqual({ content: "y\n", matched: [1] });
  deadline.abort();
  const error: unknown = await slow.catch((e: unknown) => e);
  expect((error as ReplaceStoppedError).edit).toBe(0);
});

test("an edit still queued when the deadline comes is not run, and says so", async () => {
  const deadline = new AbortController();
  const slow = applyReplaceStoppable(`${"a".repeat(40)}!\n`, [{ match: /(a+)+$/, with: "b" }], deadline.signal);
  const queued = applyReplaceStoppable("x\n", [{ match: /x/, with: "y" }], deadline.signal);
  deadline.abort();
  const [first, second] = await Promise.allSettled([slow, queued]);
  expect(first.status === "rejected" && first.reason).toBeInstanceOf(ReplaceStoppedError);
  expect(second.status === "rejected" && second.reason).toBeInstanceOf(ReplaceStoppedError);
  expect(second.status === "rejected" && (second.reason as ReplaceStoppedError).edit).toBeUndefined();
});

test("after a stopped worker the next call runs", async () => {
  const r = await applyReplaceStoppable("x\n", [{ match: /x/, with: "y" }], new AbortController().signal);
  expect(r).toEqual({ content: "y\n", matched: [1] });
});
