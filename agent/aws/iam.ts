// The least-privilege IAM policy for a configuration: the union of what each enabled action declares it needs.
import type { Action, PolicyStatement } from "../actions/types";
import type { Config } from "../config/schema";

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: PolicyStatement[];
}

/**
 * Every enabled action's statements, in the actions' order. Statements with the same Sid (two actions asking for the
 * same thing) are kept once; a configuration that needs no AWS call gets an empty statement list.
 */
export function policyFor(config: Config, actions: readonly Action[]): PolicyDocument {
  const seen = new Set<string>();
  const statements: PolicyStatement[] = [];
  for (const action of actions) {
    if (!action.enabled(config)) continue;
    for (const statement of action.permissions?.(config) ?? []) {
      const key = JSON.stringify(statement);
      if (seen.has(key)) continue;
      seen.add(key);
      statements.push(statement);
    }
  }
  return { Version: "2012-10-17", Statement: statements };
}
