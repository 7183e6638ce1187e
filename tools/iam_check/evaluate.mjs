// Evaluate IAM requests with @cloud-copilot/iam-simulate (offline): the weeks' permission tests call this.
//
//   node tools/iam_check/evaluate.mjs < requests.json > decisions.json
//
// Input: a JSON array of requests, each
//   {"principal": ARN, "action": "s3:GetObject", "resource": ARN, "accountId": "123456789012",
//    "context": {"s3:prefix": "..."}, "identityPolicies": {"name": policy, ...}, "resourcePolicy": policy|null}
// Output: a JSON array, one entry per request in the same order:
//   {"decision": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied" | "error", "errors": ...,
//    "ignoredContextKeys": [...], "unvalidated": "why the request was evaluated without validation"}
// A request the simulator cannot evaluate (an unknown action, a resource ARN that is not one of the
// action's resource types in AWS's Service Authorization Reference, a malformed policy) is "error".
//
// Two gaps in the reference data, each evaluated without validation only when the request says so:
//   "oidcAliases": {"token.actions.githubusercontent.com:sub": "token.actions.githubusercontent.com:workflow", ...}
//     GitHub's OIDC claims sub and aud, which IAM accepts in trust policies (IAM guide, "Available
//     keys for AWS web identity federation") but the reference does not list for
//     sts:AssumeRoleWithWebIdentity, so the simulator would drop them from the request. Each is
//     renamed, in the trust policy and in the request alike, to a GitHub claim the reference does
//     list (a single-valued string too): the condition operators and values are evaluated unchanged.
//   "unlistedResource": true for API Gateway's HTTP APIs (/apis, /apis/ID/routes ...), which the
//     reference lists as resource types but not under apigateway:GET/POST/PATCH.
import { readFileSync } from 'node:fs'
import { runSimulation, runUnsafeSimulation } from '@cloud-copilot/iam-simulate'

const requests = JSON.parse(readFileSync(0, 'utf8'))
const decisions = []
for (const request of requests) {
  for (const [key, alias] of Object.entries(request.oidcAliases ?? {})) {
    if (JSON.stringify(request.resourcePolicy ?? {}).includes(JSON.stringify(alias).slice(1, -1))) {
      throw new Error(`the trust policy uses ${alias}, the name this check gives ${key}: choose another alias`)
    }
    request.resourcePolicy = JSON.parse(JSON.stringify(request.resourcePolicy).replaceAll(JSON.stringify(key).slice(1, -1), alias))
    if (key in (request.context ?? {})) {
      request.context[alias] = request.context[key]
      delete request.context[key]
    }
  }
  const simulation = {
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: request.accountId },
      contextVariables: request.context ?? {},
    },
    identityPolicies: Object.entries(request.identityPolicies ?? {}).map(([name, policy]) => ({ name, policy })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: request.resourcePolicy ?? undefined,
  }
  const result = await runSimulation(simulation, {})
  if (result.resultType === 'error') {
    if (request.unlistedResource && result.errors.message === 'no.resource.types') {
      const decision = runUnsafeSimulation(simulation, {})
      decisions.push({ decision, ignoredContextKeys: [], unvalidated: 'resource type not listed for the action' })
    } else {
      decisions.push({ decision: 'error', errors: result.errors })
    }
    continue
  }
  const ignored = result.resultType === 'single' ? result.result.ignoredContextKeys ?? [] : []
  decisions.push({ decision: result.overallResult, ignoredContextKeys: ignored })
}
process.stdout.write(JSON.stringify(decisions) + '\n')
