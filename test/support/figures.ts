// Figures a test measures and prints, never asserts (timings vary from machine to machine and run to run).
import { appendFileSync } from "node:fs";

/** Prints "figure: <what>: <ms> ms"; with BOOTLACE_FIGURES set, also appends the line to that file. */
export function recordFigure(what: string, ms: number): void {
  const line = `figure: ${what}: ${Math.round(ms)} ms`;
  console.log(line);
  const file = process.env.BOOTLACE_FIGURES;
  if (file) appendFileSync(file, `${line}\n`);
}
