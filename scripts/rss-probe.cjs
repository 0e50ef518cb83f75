// Preloaded by the benchmark (node --require): writes this process's peak RSS in KiB to $BOOTLACE_RSS_FILE at exit.
const { writeFileSync } = require("node:fs");
process.on("exit", () => {
  if (process.env.BOOTLACE_RSS_FILE)
    writeFileSync(process.env.BOOTLACE_RSS_FILE, String(process.resourceUsage().maxRSS));
});
