// A DNS server on 127.0.0.1 for tests: answers A and PTR questions over UDP from a function the test gives, so that
// doctor's resolver checks run against names the test controls and never reach a real DNS server.
//
// Hand-written rather than a package: bootlace has no DNS server among its dependencies, and the part needed here is
// small (one question per query, A and PTR answers, NXDOMAIN otherwise; RFC 1035 sections 4.1 and 3.3).
import { createSocket, type RemoteInfo } from "node:dgram";

export type DnsType = "A" | "PTR";

/** The answers to a question: addresses for A, names for PTR; none → NXDOMAIN. `name` is lower case, no final dot. */
export type DnsAnswers = (name: string, type: DnsType) => string[] | Promise<string[]>;

export interface DnsStub {
  /** "127.0.0.1:PORT", the form dns.Resolver#setServers and BOOTLACE_RESOLVER take. */
  server: string;
  /** Questions asked so far, as "name TYPE". */
  questions: string[];
  close(): Promise<void>;
}

const TYPES: Record<number, DnsType> = { 1: "A", 12: "PTR" };
const CODES: Record<DnsType, number> = { A: 1, PTR: 12 };

export async function startDnsStub(answers: DnsAnswers): Promise<DnsStub> {
  const socket = createSocket("udp4");
  const questions: string[] = [];
  socket.on("message", (query: Buffer, from: RemoteInfo) => {
    void reply(query).then(
      (answer) => answer && socket.send(answer, from.port, from.address),
      () => undefined,
    );
  });

  async function reply(query: Buffer): Promise<Buffer | undefined> {
    const question = readQuestion(query);
    if (!question) return undefined;
    const type = TYPES[question.qtype];
    questions.push(`${question.name} ${type ?? question.qtype}`);
    const found = type ? await answers(question.name, type) : [];
    return response(query, question.end, type, found);
  }

  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => resolve());
  });
  return {
    server: `127.0.0.1:${socket.address().port}`,
    questions,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

/** The first question: its name (lower case, no final dot), type, and where it ends in the query. */
function readQuestion(query: Buffer): { name: string; qtype: number; end: number } | undefined {
  if (query.length < 12 || query.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  while (at < query.length && query[at] !== 0) {
    const length = query[at]!;
    labels.push(query.toString("latin1", at + 1, at + 1 + length));
    at += 1 + length;
  }
  if (at + 5 > query.length) return undefined;
  return { name: labels.join(".").toLowerCase(), qtype: query.readUInt16BE(at + 1), end: at + 5 };
}

/** The query's header and question, then the answers (each naming the question by a pointer to offset 12). */
function response(query: Buffer, questionEnd: number, type: DnsType | undefined, found: string[]): Buffer {
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // the id
  const recursionDesired = query[2]! & 0x01;
  header[2] = 0x80 | recursionDesired; // a response, to a standard query
  header[3] = 0x80 | (found.length === 0 ? 3 : 0); // recursion available; NXDOMAIN when nothing is known
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(found.length, 6);
  const records = type ? found.map((value) => record(type, value)) : [];
  return Buffer.concat([header, query.subarray(12, questionEnd), ...records]);
}

function record(type: DnsType, value: string): Buffer {
  const data = type === "A" ? Buffer.from(value.split(".").map(Number)) : encodeName(value);
  const fixed = Buffer.alloc(12);
  fixed.writeUInt16BE(0xc00c, 0); // the question's name
  fixed.writeUInt16BE(CODES[type], 2);
  fixed.writeUInt16BE(1, 4); // class IN
  fixed.writeUInt32BE(60, 6); // TTL
  fixed.writeUInt16BE(data.length, 10);
  return Buffer.concat([fixed, data]);
}

function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, "").split(".");
  return Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, "latin1")])),
    Buffer.from([0]),
  ]);
}
