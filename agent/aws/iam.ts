// The least-privilege IAM policy for a configuration: the union of what each enabled action declares it needs, and
// what the Auto Scaling lifecycle needs.
import type { Action, PolicyStatement } from "../actions/types";
import type { Config } from "../config/schema";
import { lifecyclePermissions } from "../lifecycle/permissions";

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: PolicyStatement[];
}

/**
 * Every enabled action's statements, in the actions' order, then the lifecycle's. Statements with the same Sid (two actions asking for the
 * same thing) are kept once; a configuration that needs no AWS call gets an empty statement list.
 */
export function policyFor(config: Config, actions: readonly Action[]): PolicyDocument {
  const seen = new Set<string>();
  const statements: PolicyStatement[] = [];
  const wanted = [
    ...actions.filter((a) => a.enabled(config)).flatMap((a) => a.permissions?.(config) ?? []),
    // The Auto Scaling lifecycle is not an action, but runs with the same credentials.
    ...lifecyclePermissions(config),
  ];
  for (const statement of wanted) {
    const key = JSON.stringify(statement);
    if (seen.has(key)) continue;
    seen.add(key);
    statements.push(statement);
  }
  return { Version: "2012-10-17", Statement: statements };
}
