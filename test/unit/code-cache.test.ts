// The launcher's code cache: where it lives, its key, and the checksum that keeps a damaged file away from V8 (the
// files themselves: test/integration/code-cache.test.ts).
import { cacheDirFrom, cacheFileName, sealCache, unsealCache } from "../../agent/launcher/code-cache";

describe("cacheDirFrom", () => {
  const home = () => "/home/u";
  test("BOOTLACE_CACHE_DIR wins; empty or off means no cache", () => {
    expect(cacheDirFrom({ BOOTLACE_CACHE_DIR: "/c", CACHE_DIRECTORY: "/s" }, 0, home)).toBe("/c");
    expect(cacheDirFrom({ BOOTLACE_CACHE_DIR: "" }, 0, home)).toBeUndefined();
    expect(cacheDirFrom({ BOOTLACE_CACHE_DIR: "off" }, 0, home)).toBeUndefined();
  });
  test("then systemd's CACHE_DIRECTORY (its first entry), then /var/cache/bootlace for root", () => {
    expect(cacheDirFrom({ CACHE_DIRECTORY: "/var/cache/bootlace:/other" }, 1000, home)).toBe("/var/cache/bootlace");
    expect(cacheDirFrom({}, 0, home)).toBe("/var/cache/bootlace");
  });
  test("other users: XDG_CACHE_HOME, else ~/.cache", () => {
    expect(cacheDirFrom({ XDG_CACHE_HOME: "/x" }, 1000, home)).toBe("/x/bootlace");
    expect(cacheDirFrom({}, 1000, home)).toBe("/home/u/.cache/bootlace");
    expect(cacheDirFrom({}, 1000, () => "")).toBeUndefined();
  });
});

describe("cacheFileName", () => {
  test("changes with the source's bytes, the command and the flags", () => {
    const a = cacheFileName("run", "source A", []);
    expect(cacheFileName("run", "source A", [])).toBe(a);
    expect(cacheFileName("run", "source B", [])).not.toBe(a);
    expect(cacheFileName("cli", "source A", [])).not.toBe(a);
    expect(cacheFileName("run", "source A", ["--max-old-space-size=64"])).not.toBe(a);
    expect(a).toMatch(/^bootlace-run-[0-9a-f]{32}-[0-9a-f]{12}\.v8cache$/);
  });
});

describe("sealCache / unsealCache", () => {
  const data = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
  test("what was sealed comes back", () => {
    expect(unsealCache(sealCache(data))).toEqual(data);
  });
  test("one changed byte, a cut, another format or nothing at all is corrupt", () => {
    const sealed = sealCache(data);
    const flipped = Buffer.from(sealed);
    flipped.writeUInt8(flipped.readUInt8(sealed.length - 100) ^ 1, sealed.length - 100);
    expect(unsealCache(flipped)).toBe("corrupt");
    expect(unsealCache(sealed.subarray(0, sealed.length - 1))).toBe("corrupt");
    expect(unsealCache(data)).toBe("corrupt");
    expect(unsealCache(Buffer.alloc(0))).toBe("corrupt");
  });
});
