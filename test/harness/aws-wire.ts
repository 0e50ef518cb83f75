// The AWS wire as the fidelity proxy sees it: which service and operation a request is, and each service's error shape.
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

export type AwsService = "ec2" | "elasticloadbalancing" | "route53" | "autoscaling" | "unknown";

/** One buffered request, already classified. `path` includes the query string. */
export interface WireRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  service: AwsService;
  operation: string;
}

export interface WireResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string;
}

/** Answers one operation in place of (or around) moto; `forward` sends a request to moto unchanged. */
export type Interceptor = (
  req: WireRequest,
  forward: (req: WireRequest) => Promise<WireResponse>,
) => Promise<WireResponse>;

/** The service named in the SigV4 credential scope (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`). */
export function serviceOf(headers: IncomingHttpHeaders, path: string): AwsService {
  const auth = headers.authorization ?? "";
  const scope =
    /Credential=[^/,\s]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(auth)?.[1] ??
    /[?&]X-Amz-Credential=[^/&]+%2F\d{8}%2F[^%&]+%2F([^%&]+)%2Faws4_request/i.exec(path)?.[1];
  return scope === "ec2" || scope === "elasticloadbalancing" || scope === "route53" || scope === "autoscaling"
    ? scope
    : "unknown";
}

/** The API operation: `Action=` of the query protocol (EC2, ELBv2), or the Route 53 REST method and path. */
export function operationOf(service: AwsService, method: string, path: string, body: Buffer): string {
  if (service === "route53") return route53Operation(method, path);
  const [, query = ""] = path.split("?", 2);
  const action = new URLSearchParams(query).get("Action") ?? new URLSearchParams(body.toString("utf8")).get("Action");
  return action ?? `${method} ${path.split("?", 1)[0]}`;
}

// Route 53 is REST: the operation is the method plus the path template (API version 2013-04-01).
const ROUTE53_ROUTES: [method: string, path: RegExp, operation: string][] = [
  ["POST", /^hostedzone$/, "CreateHostedZone"],
  ["GET", /^hostedzone$/, "ListHostedZones"],
  ["GET", /^hostedzone\/[^/]+$/, "GetHostedZone"],
  ["DELETE", /^hostedzone\/[^/]+$/, "DeleteHostedZone"],
  ["POST", /^hostedzone\/[^/]+$/, "UpdateHostedZoneComment"],
  ["POST", /^hostedzone\/[^/]+\/rrset\/?$/, "ChangeResourceRecordSets"],
  ["GET", /^hostedzone\/[^/]+\/rrset\/?$/, "ListResourceRecordSets"],
  ["POST", /^hostedzone\/[^/]+\/associatevpc$/, "AssociateVPCWithHostedZone"],
  ["POST", /^hostedzone\/[^/]+\/disassociatevpc$/, "DisassociateVPCFromHostedZone"],
  ["GET", /^hostedzonesbyname$/, "ListHostedZonesByName"],
  ["GET", /^hostedzonesbyvpc$/, "ListHostedZonesByVPC"],
  ["GET", /^hostedzonecount$/, "GetHostedZoneCount"],
  ["GET", /^change\/[^/]+$/, "GetChange"],
  ["POST", /^tags\/[^/]+\/[^/]+$/, "ChangeTagsForResource"],
  ["GET", /^tags\/[^/]+\/[^/]+$/, "ListTagsForResource"],
  ["POST", /^tags\/[^/]+$/, "ListTagsForResources"],
  ["POST", /^healthcheck$/, "CreateHealthCheck"],
  ["GET", /^healthcheck$/, "ListHealthChecks"],
  ["GET", /^healthcheck\/[^/]+$/, "GetHealthCheck"],
  ["POST", /^healthcheck\/[^/]+$/, "UpdateHealthCheck"],
  ["DELETE", /^healthcheck\/[^/]+$/, "DeleteHealthCheck"],
];

function route53Operation(method: string, path: string): string {
  const bare = path.split("?", 1)[0] ?? "";
  const rest = bare.replace(/^\/2013-04-01\//, "");
  for (const [m, re, operation] of ROUTE53_ROUTES) if (m === method && re.test(rest)) return operation;
  return `${method} ${bare}`;
}

/** An EC2 request with DryRun=true: AWS checks the caller's permission for it and changes nothing. */
export function isDryRun(path: string, body: Buffer): boolean {
  const [, query = ""] = path.split("?", 2);
  return (
    new URLSearchParams(query).get("DryRun") === "true" ||
    new URLSearchParams(body.toString("utf8")).get("DryRun") === "true"
  );
}

/** Mutating means anything but a read: AWS's own split for throttling buckets, and "a second run makes no changes". */
export function isMutating(operation: string): boolean {
  return !/^(Describe|List|Get)/.test(operation) && !/^(GET|HEAD) /.test(operation);
}

export function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", "'": "apos", '"': "quot" }[c]};`);
}

const NAMESPACES: Partial<Record<AwsService, string>> = {
  elasticloadbalancing: "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
  route53: "https://route53.amazonaws.com/doc/2013-04-01/",
  autoscaling: "http://autoscaling.amazonaws.com/doc/2011-01-01/",
};

/** An error exactly as the service writes it: EC2's `<Response><Errors>` or the `<ErrorResponse>` of ELBv2 and Route 53. */
export function awsError(
  service: AwsService,
  status: number,
  code: string,
  message: string,
  retryAfterSeconds?: number,
): WireResponse {
  const requestId = randomUUID();
  const headers: Record<string, string> = { "content-type": "text/xml" };
  if (retryAfterSeconds !== undefined) headers["retry-after"] = String(retryAfterSeconds);
  const text = `<Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message>`;
  let body: string;
  if (service === "ec2") {
    body = `<Response><Errors><Error>${text}</Error></Errors><RequestID>${requestId}</RequestID></Response>`;
  } else {
    const ns = NAMESPACES[service];
    const type = status >= 500 ? "Receiver" : "Sender";
    body = `<ErrorResponse${ns ? ` xmlns="${ns}"` : ""}><Error><Type>${type}</Type>${text}</Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
    headers["x-amzn-requestid"] = requestId;
  }
  return { status, headers, body: `<?xml version="1.0" encoding="UTF-8"?>\n${body}` };
}
