#!/usr/bin/env bash
# The benchmark's "before bootlace": the full wiring as a boot script does it today, with curl (IMDSv2), the AWS CLI
# and sed, one step after another: claim a free Elastic IP of the pool Pool=$POOL, register in the target group
# $TARGET_GROUP and wait until healthy, upsert eip-<instance>.$ZONE to the Elastic IP and wait for INSYNC, find the
# peers tagged Role=$DB_ROLE and Role=$APP_ROLE, and write three files. The same work as bootlace's configuration in
# scripts/bench/full-wiring.ts, minus bootlace's safety (no ownership record, no race handling on the pool, no staged
# writes).
#
# Only loopback endpoints: IMDS (the emulator) and AWS_ENDPOINT (the fidelity proxy) are required, and the CLI gets
# its credentials from this script (fetched from that IMDS), never from a metadata service of its own.
# Environment: IMDS, AWS_ENDPOINT, ROOT (files are written under it), POOL, TARGET_GROUP, ZONE, DB_ROLE, APP_ROLE,
# AWS (the aws command; default aws).
set -euo pipefail
: "${IMDS:?}" "${AWS_ENDPOINT:?}" "${ROOT:?}" "${POOL:?}" "${TARGET_GROUP:?}" "${ZONE:?}" "${DB_ROLE:?}" "${APP_ROLE:?}"
aws=${AWS:-aws}

token=$(curl -sf -X PUT "$IMDS/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
md() { curl -sf -H "X-aws-ec2-metadata-token: $token" "$IMDS/latest/meta-data/$1"; }
instance_id=$(md instance-id)
private_ip=$(md local-ipv4)
region=$(md placement/region)
mac=$(md mac)
vpc_id=$(md "network/interfaces/macs/$mac/vpc-id")
role=$(md iam/security-credentials/)
creds=$(md "iam/security-credentials/$role")
AWS_ACCESS_KEY_ID=$(jq -r .AccessKeyId <<<"$creds")
AWS_SECRET_ACCESS_KEY=$(jq -r .SecretAccessKey <<<"$creds")
AWS_SESSION_TOKEN=$(jq -r .Token <<<"$creds")
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_EC2_METADATA_DISABLED=true
cli() { "$aws" --endpoint-url "$AWS_ENDPOINT" --region "$region" --output text "$@"; }

# Elastic IP: the first free address of the pool.
read -r allocation_id public_ip < <(cli ec2 describe-addresses --filters "Name=tag:Pool,Values=$POOL" \
	--query 'Addresses[?AssociationId==null] | [0].[AllocationId,PublicIp]')
cli ec2 associate-address --allocation-id "$allocation_id" --instance-id "$instance_id" \
	--no-allow-reassociation >/dev/null

# Target group: register, wait until healthy.
tg_arn=$(cli elbv2 describe-target-groups --names "$TARGET_GROUP" --query 'TargetGroups[0].TargetGroupArn')
cli elbv2 register-targets --target-group-arn "$tg_arn" --targets "Id=$instance_id"
[ "${NO_WAIT:-}" = 1 ] || cli elbv2 wait target-in-service --target-group-arn "$tg_arn" --targets "Id=$instance_id"

# Route 53: upsert the record, wait for INSYNC.
zone_id=$(cli route53 list-hosted-zones-by-name --dns-name "$ZONE" --max-items 1 \
	--query 'HostedZones[0].Id')
change_id=$(cli route53 change-resource-record-sets --hosted-zone-id "$zone_id" --query 'ChangeInfo.Id' \
	--change-batch "{\"Changes\":[{\"Action\":\"UPSERT\",\"ResourceRecordSet\":{\"Name\":\"eip-$instance_id.$ZONE\",\"Type\":\"A\",\"TTL\":60,\"ResourceRecords\":[{\"Value\":\"$public_ip\"}]}}]}")
[ "${NO_WAIT:-}" = 1 ] || cli route53 wait resource-record-sets-changed --id "$change_id"

# Peers: running instances of the VPC with the role's tag.
peers() {
	cli ec2 describe-instances --filters "Name=tag:Role,Values=$1" Name=instance-state-name,Values=running \
		"Name=vpc-id,Values=$vpc_id" --query 'Reservations[].Instances[].PrivateIpAddress' | tr '\t' '\n' | sort -V
}
db=$(peers "$DB_ROLE")
app=$(peers "$APP_ROLE")

# Files: a marked block in each, replaced with sed.
block() {
	local file="$ROOT$1" content=$2
	mkdir -p "$(dirname "$file")"
	touch "$file"
	sed -i '/^# BEGIN bench$/,/^# END bench$/d' "$file"
	printf '# BEGIN bench\n%s\n# END bench\n' "$content" >>"$file"
}
# shellcheck disable=SC2001 # sed, as such scripts do
block /etc/hosts "$(sed 's/$/ db/' <<<"$db")"
block /etc/peers.list "$app"
block /etc/motd "$instance_id $private_ip"
