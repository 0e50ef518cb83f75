// The one way bootlace talks to the instance metadata service: IMDSv2 only, one cached token, bounded boot-time waits.
//
// Hand-rolled on undici rather than @aws-sdk/ec2-metadata-service because that package fetches a new token before
// every request (two round trips per read, and a PUT per read against IMDS's rate limit), sends `//latest/...` when
// given a path with a leading slash (an exact-match IMDS stand-in answers 404), and falls back to IMDSv1 when the
// token PUT fails — which hides the hop-limit problem instead of reporting it. See the reference, section 1.
import { setMaxListeners } from "node:events";
import { Pool, request } from "undici";
import type { Clock } from "../core/clock";
import { ConfigError, DeadlineError, MetadataUnavailableError, describeCause } from "../core/errors";
import type { Logger } from "../core/log";
import { retry, type Deadline } from "../core/retry";

export const IMDS_IPV4_ENDPOINT = "http://169.254.169.254";
export const IMDS_IPV6_ENDPOINT = "http://[fd00:ec2::254]";
const MAX_TOKEN_TTL_SECONDS = 21600;
const TOKEN_PATH = "/latest/api/token";
const TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER = "x-aws-ec2-metadata-token";
/** After this long without an answer, one line at warn level: a silent multi-second stall at boot looks like a hang. */
const SLOW_WAIT_NOTICE_MS = 5000;

/** The endpoint the AWS SDKs would use, from the same environment variables (reference, section 1). */
export function imdsEndpointFrom(env: Record<string, string | undefined>): string {
  const explicit = env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  if (explicit) return originOf(explicit, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
  const mode = env.AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE;
  if (!mode || mode.toLowerCase() === "ipv4") return IMDS_IPV4_ENDPOINT;
  if (mode.toLowerCase() === "ipv6") return IMDS_IPV6_ENDPOINT;
  throw new ConfigError(`unsupported endpoint mode "${mode}"; expected IPv4 or IPv6`, {
    source: "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
  });
}

function originOf(endpoint: string, source: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConfigError(`"${endpoint}" is not a URL; expected e.g. http://169.254.169.254`, { source });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`"${endpoint}" must be an http:// or https:// URL`, { source });
  }
  return url.origin;
}

export interface ImdsClientOptions {
  /** Origin of the metadata service, usually from imdsEndpointFrom(process.env). */
  endpoint: string;
  clock: Clock;
  /** The run's deadline: boot-time waits for IMDS end here. */
  deadline: Deadline;
  log: Logger;
  /** Lifetime asked for each token, 1..21600 s. */
  tokenTtlSeconds?: number;
  /** Connect, header and body timeout of one HTTP request. */
  requestTimeoutMs?: number;
  /** Jitter source for the retry backoff. */
  random?: () => number;
  /**
   * Where the token is kept. A later client given the same cache (the instance-profile credentials after the world's
   * reads, each watch pass) uses the token already issued instead of asking for another.
   */
  tokens?: ImdsTokenCache;
}

/** The token one client got, for the clients that come after it; only ever used with the same endpoint. */
export class ImdsTokenCache {
  /** Read and written by ImdsClient only. */
  held: (Token & { origin: string }) | undefined;
}

/** What readers of metadata need; tests and the fleet simulator may hand in their own. */
export interface MetadataReader {
  getText(path: string): Promise<string | undefined>;
  getBytes(path: string): Promise<Buffer | undefined>;
}

/** A request that got no HTTP answer (refused, reset, timed out); says which request, for the hop-limit hint. */
class ImdsNetworkError extends Error {
  override readonly name = "ImdsNetworkError";
  readonly code: string | undefined;
  constructor(
    readonly method: string,
    readonly url: string,
    cause: unknown,
  ) {
    super(`${method} ${url}: ${describeCause(cause)}`, { cause });
    const code = (cause as { code?: unknown } | null)?.code;
    this.code = typeof code === "string" ? code : undefined;
  }
}

/** IMDS answered 403: the service is disabled for this instance, or a proxy's X-Forwarded-For got the PUT refused. */
export class ImdsForbiddenError extends MetadataUnavailableError {}

/** A non-2xx answer, kept apart from network failures so retries can tell them apart. */
class ImdsStatusError extends Error {
  override readonly name = "ImdsStatusError";
  constructor(
    readonly status: number,
    readonly method: string,
    readonly url: string,
  ) {
    super(`${method} ${url} answered ${status}`);
  }
}

interface Token {
  value: string;
  /** Epoch ms (by the injected clock) from which a new token is fetched instead. */
  refreshAt: number;
}

/** Status codes the service gives while starting or overloaded; anything else is an answer about the request. */
const isTransientStatus = (status: number): boolean => status >= 500 || status === 429;

export class ImdsClient implements MetadataReader {
  private readonly origin: string;
  private readonly ttlSeconds: number;
  private readonly pool: Pool;
  private readonly tokens: ImdsTokenCache;
  /** The token PUT in flight, shared so concurrent reads cost one PUT. */
  private tokenInFlight: Promise<Token> | undefined;
  private warnedSlow = false;
  private closed = false;
  private closing: Promise<void> = Promise.resolve();
  /** Follows the deadline's signal; one listener on it instead of one per concurrent request (Node warns past 10). */
  private readonly abort = new AbortController();
  private readonly onDeadline = (): void => this.abort.abort(this.o.deadline.signal.reason);

  constructor(private readonly o: ImdsClientOptions) {
    this.origin = originOf(o.endpoint, "IMDS endpoint");
    this.ttlSeconds = o.tokenTtlSeconds ?? MAX_TOKEN_TTL_SECONDS;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 1 || this.ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
      throw new ConfigError(`IMDS token TTL must be an integer from 1 to 21600 seconds, got ${this.ttlSeconds}`);
    }
    this.tokens = o.tokens ?? new ImdsTokenCache();
    const timeout = o.requestTimeoutMs ?? 2000;
    // A dedicated pool: short timeouts (a link-local service that does not answer in 2 s is not going to), and
    // nothing shared with the AWS SDK's connections or any proxy settings.
    this.pool = new Pool(this.origin, {
      connect: { timeout },
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connections: 8,
    });
    setMaxListeners(0, this.abort.signal);
    if (o.deadline.signal.aborted) this.onDeadline();
    else o.deadline.signal.addEventListener("abort", this.onDeadline, { once: true });
  }

  /** The item at `path` (relative to /latest/, e.g. "meta-data/instance-id") as bytes; undefined when absent (404). */
  async getText(path: string): Promise<string | undefined> {
    return (await this.getBytes(path))?.toString("utf8");
  }

  async getBytes(path: string): Promise<Buffer | undefined> {
    // Always relative to /latest/: a leading slash must not turn into "//latest/..." (the SDK package's bug).
    const url = `/latest/${path.replace(/^\/+/, "")}`;
    const started = this.o.clock.now();
    let last: unknown;
    try {
      return await retry(
        async () => {
          try {
            return await this.getOnce(url);
          } catch (error) {
            // The abort at the deadline says nothing about IMDS; keep the failure before it.
            if (!this.o.deadline.signal.aborted) last = error;
            throw error;
          }
        },
        {
          label: `IMDS GET ${url}`,
          clock: this.o.clock,
          deadline: { at: this.o.deadline.at, signal: this.abort.signal },
          initialMs: 100,
          maxMs: 2000,
          ...(this.o.random ? { random: this.o.random } : {}),
          retryable: (error) => this.isRetryable(error),
          onRetry: (error, attempt, delayMs) => this.noteRetry(url, started, error, attempt, delayMs),
        },
      );
    } catch (error) {
      if (error instanceof MetadataUnavailableError) throw error;
      if (error instanceof DeadlineError || this.o.deadline.signal.aborted) {
        throw this.gaveUp(url, started, last ?? error);
      }
      throw new MetadataUnavailableError(`IMDS GET ${url}: ${describe(error)}`, { cause: error });
    }
  }

  /** Releases the pool's keep-alive sockets; call once the run is done with IMDS. Later reads fail at once. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.o.deadline.signal.removeEventListener("abort", this.onDeadline);
      this.closing = this.pool.close();
    }
    return this.closing;
  }

  /** One attempt: token (cached), GET, and on 401 one fresh token and one more GET. */
  private async getOnce(url: string): Promise<Buffer | undefined> {
    let token = await this.currentToken();
    let res = await this.send("GET", url, { [TOKEN_HEADER]: token.value });
    if (res.status === 401) {
      // The token expired early or the service restarted and forgot it: one fresh token, one more try.
      this.forget(token);
      token = await this.currentToken();
      res = await this.send("GET", url, { [TOKEN_HEADER]: token.value });
      if (res.status === 401) {
        throw new MetadataUnavailableError(`IMDS answered 401 to GET ${url} even with a freshly issued token`);
      }
    }
    if (res.status === 200) return res.body;
    if (res.status === 404) return undefined;
    throw new ImdsStatusError(res.status, "GET", url);
  }

  private currentToken(): Promise<Token> {
    const held = this.tokens.held;
    if (held?.origin === this.origin && this.o.clock.now() < held.refreshAt) return Promise.resolve(held);
    this.tokenInFlight ??= this.fetchToken().finally(() => {
      this.tokenInFlight = undefined;
    });
    return this.tokenInFlight;
  }

  private forget(used: Token): void {
    if (this.tokens.held === used) this.tokens.held = undefined;
  }

  private async fetchToken(): Promise<Token> {
    const askedAt = this.o.clock.now();
    const res = await this.send("PUT", TOKEN_PATH, { [TTL_HEADER]: String(this.ttlSeconds) });
    if (res.status === 400) {
      throw new MetadataUnavailableError(
        `IMDS rejected the token request (400 Bad Request): the ${TTL_HEADER} header must be an integer ` +
          `from 1 to 21600; bootlace sent ${this.ttlSeconds}`,
      );
    }
    if (res.status !== 200) throw new ImdsStatusError(res.status, "PUT", TOKEN_PATH);
    const value = res.body.toString("utf8").trim();
    if (!value) throw new MetadataUnavailableError(`IMDS answered PUT ${TOKEN_PATH} with an empty token`);
    // Trust the shorter of what was asked and what the service says it granted.
    const granted = Number(res.ttlHeader);
    const ttlMs =
      1000 * (Number.isInteger(granted) && granted > 0 ? Math.min(granted, this.ttlSeconds) : this.ttlSeconds);
    // Refresh with 60 s or 10% of the TTL to spare, whichever is more, so a token never expires between check and
    // use; for very short TTLs keep at least half of it usable.
    const margin = Math.min(Math.max(60_000, ttlMs / 10), ttlMs / 2);
    const token = { value, refreshAt: askedAt + ttlMs - margin, origin: this.origin };
    this.tokens.held = token;
    return token;
  }

  private async send(
    method: "GET" | "PUT",
    path: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; body: Buffer; ttlHeader: string | undefined }> {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${this.origin}${path}`, {
        method,
        headers,
        dispatcher: this.pool,
        signal: this.abort.signal,
      });
    } catch (error) {
      throw new ImdsNetworkError(method, path, error);
    }
    if (res.statusCode === 403) {
      await res.body.dump();
      throw new ImdsForbiddenError(
        `IMDS refused ${method} ${path} with 403 Forbidden. Likely causes: the instance metadata service is ` +
          `disabled (HttpEndpoint=disabled; enable it with "aws ec2 modify-instance-metadata-options ` +
          `--http-endpoint enabled"), or the token PUT was rejected because it carried X-Forwarded-For ` +
          `(a proxy sits between bootlace and 169.254.169.254; exempt it with NO_PROXY)`,
      );
    }
    let body: Buffer;
    try {
      body = Buffer.from(await res.body.arrayBuffer());
    } catch (error) {
      throw new ImdsNetworkError(method, path, error);
    }
    const ttl = res.headers[TTL_HEADER];
    return { status: res.statusCode, body, ttlHeader: Array.isArray(ttl) ? ttl[0] : ttl };
  }

  private isRetryable(error: unknown): boolean {
    // After close() the pool refuses requests; that is not the service starting up.
    if (this.closed || this.o.deadline.signal.aborted) return false;
    if (error instanceof MetadataUnavailableError) return false;
    if (error instanceof ImdsStatusError) return isTransientStatus(error.status);
    // Anything else came from the socket: refused, reset, timed out, unreachable — the service is not up yet.
    return true;
  }

  private noteRetry(url: string, started: number, error: unknown, attempt: number, delayMs: number): void {
    this.o.log.debug("IMDS not answering yet; retrying", { path: url, attempt, delayMs, error: describe(error) });
    const waited = this.o.clock.now() - started;
    if (!this.warnedSlow && waited >= SLOW_WAIT_NOTICE_MS) {
      this.warnedSlow = true;
      this.o.log.warn("still waiting for the instance metadata service", {
        endpoint: this.origin,
        waitedS: Math.round(waited / 1000),
        error: describe(error),
      });
    }
  }

  private gaveUp(url: string, started: number, last: unknown): MetadataUnavailableError {
    const waitedS = ((this.o.clock.now() - started) / 1000).toFixed(1);
    const cause = last instanceof DeadlineError && last.cause !== undefined ? last.cause : last;
    return new MetadataUnavailableError(
      `the instance metadata service at ${this.origin} did not answer GET ${url} within the deadline ` +
        `(waited ${waitedS} s); last error: ${describe(cause)}. ${hopLimitHint(cause)}`,
      { cause },
    );
  }
}

/** Our own errors already say what happened; errorCode() would prefix their class name. */
function describe(error: unknown): string {
  return error instanceof ImdsNetworkError || error instanceof ImdsStatusError ? error.message : describeCause(error);
}

/** A token PUT whose reply never comes while the connection was accepted is what a hop limit of 1 looks like. */
export function tokenReplyLost(error: unknown): boolean {
  const cause = error instanceof MetadataUnavailableError ? error.cause : error;
  return cause instanceof ImdsNetworkError && cause.method === "PUT" && cause.code === "UND_ERR_HEADERS_TIMEOUT";
}

function hopLimitHint(error: unknown): string {
  const advice = `raise HttpPutResponseHopLimit to 2 ("aws ec2 modify-instance-metadata-options --http-put-response-hop-limit 2")`;
  return tokenReplyLost(error)
    ? `The token request (PUT ${TOKEN_PATH}) was accepted but its reply never came: in a container this is the ` +
        `signature of HttpPutResponseHopLimit=1 dropping the reply; ${advice}.`
    : `If bootlace runs in a container, the token reply is lost when HttpPutResponseHopLimit is 1; ${advice}.`;
}
