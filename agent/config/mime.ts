// The MIME subset cloud-init's user-data uses: a message's headers and body, header parameters, multipart bodies split
// at their boundary, transfer encodings and charsets undone. Pure; what the parts mean is userdata.ts's business.
//
// Hand-rolled rather than a library: nothing MIME-capable is installed, and the maintained parsers (mailparser,
// postal-mime) are built for e-mail (address headers, encoded words, attachments streams) and would add far more to
// the single boot-time bundle than the subset cloud-init's user-data uses: multipart/* with a boundary, per-part
// Content-Type (with charset), Content-Transfer-Encoding (7bit, 8bit, binary, base64, quoted-printable) and
// Content-Disposition filename. The parser works on latin1 strings, which map bytes one to one, so binary bodies
// survive until they are decoded.

/** A MIME entity: its headers (names lower-cased) and its body, still as latin1. */
export interface Entity {
  headers: Map<string, string>;
  body: string;
}

/** A message or part, latin1-decoded: headers (folded lines joined) up to the first empty line, then the body. */
export function parseEntity(latin1: string): Entity {
  const split = /\r?\n\r?\n/.exec(latin1);
  const head = split ? latin1.slice(0, split.index) : latin1;
  const body = split ? latin1.slice(split.index + split[0].length) : "";
  const headers = new Map<string, string>();
  // Folded header lines continue the previous one.
  for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const m = /^([!-9;-~]+):\s*(.*)$/.exec(line);
    if (m?.[1] !== undefined) headers.set(m[1].toLowerCase(), (m[2] ?? "").trim());
  }
  return { headers, body };
}

/** `text/plain; charset="utf-8"` → type and parameters (quoted-string and RFC 2231 `name*=charset''value` forms). */
export function parseHeaderValue(value: string): { value: string; params: Map<string, string> } {
  const semi = value.indexOf(";");
  const params = new Map<string, string>();
  const re = /;\s*([^=\s;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  for (const m of (semi < 0 ? "" : value.slice(semi)).matchAll(re)) {
    const name = (m[1] ?? "").toLowerCase();
    const raw = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : (m[3] ?? "");
    if (name.endsWith("*")) {
      const [, charset = "", encoded = ""] = /^([^']*)'[^']*'(.*)$/.exec(raw) ?? [];
      params.set(name.slice(0, -1), decodeText(Buffer.from(decodePercent(encoded), "latin1"), charset));
    } else {
      params.set(name, raw);
    }
  }
  return { value: (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase(), params };
}

function decodePercent(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Bytes in a charset named by a header; an unknown charset reads as UTF-8. */
export function decodeText(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset || "utf-8").decode(bytes);
  } catch {
    return bytes.toString("utf8");
  }
}

/**
 * The bodies between `--boundary` lines (RFC 2046: the line break before a delimiter belongs to it); at most `most`
 * of them (the rest is never looked at). The boundary is escaped: it is text, never a pattern.
 */
export function splitMultipart(body: string, boundary: string, most = Infinity): string[] {
  const escaped = boundary.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const delimiter = new RegExp(`(?:^|\\r?\\n)--${escaped}(--)?[ \\t]*(?:\\r?\\n|$)`, "g");
  const parts: string[] = [];
  let start: number | undefined;
  for (const m of body.matchAll(delimiter)) {
    if (parts.length >= most) return parts;
    if (start !== undefined) parts.push(body.slice(start, m.index));
    if (m[1] !== undefined) return parts;
    start = m.index + m[0].length;
  }
  // No closing delimiter: keep what was opened, as Python's parser does.
  if (start !== undefined && parts.length < most) parts.push(body.slice(start));
  return parts;
}

/** A body as bytes, its Content-Transfer-Encoding undone (7bit, 8bit and binary are the bytes themselves). */
export function decodeTransfer(body: string, encoding: string): Buffer {
  switch (encoding) {
    case "base64":
      return Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ""), "base64");
    case "quoted-printable":
      return Buffer.from(decodePercent(body.replace(/=\r?\n/g, "").replace(/=([0-9A-Fa-f]{2})/g, "%$1")), "latin1");
    default:
      return Buffer.from(body, "latin1");
  }
}
