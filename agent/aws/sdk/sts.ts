// The STS client and the one command bootlace sends (doctor's GetCallerIdentity; see ec2.ts).
export { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
