// Proves, after `make test`, that every grant of every role in
// template.yaml was used by some call a function made during the tests, or
// is listed with its reason in unexercised.json; and that no call any
// function made was denied.
//
//   node infra/iam/coverage.mjs template.yaml .local/iam-calls.jsonl
//
// The log is written by the local stack's AWS proxy (infra/local/src/iam.rs):
// one {"kind": "role"} line per role of every stack the tests started, with
// its resolved policy, and one {"kind": "call"} line per checked call, with
// the evaluator's decision and the statements (Sids) that allowed it.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const [templatePath, logPath] = process.argv.slice(2)
if (!templatePath || !logPath) {
  console.error('usage: node coverage.mjs TEMPLATE CALL_LOG')
  process.exit(2)
}
const here = dirname(fileURLToPath(import.meta.url))
const reasons = JSON.parse(readFileSync(join(here, 'unexercised.json'), 'utf8'))

// The template's roles: top-level resources of type AWS::IAM::Role.
const templateRoles = [
  ...readFileSync(templatePath, 'utf8').matchAll(/^ {2}(\w+):\n(?: {4}.*\n)*? {4}Type: AWS::IAM::Role$/gm)
].map((m) => m[1])

const roles = []
const calls = []
for (const line of readFileSync(logPath, 'utf8').split('\n')) {
  if (!line.trim()) continue
  const entry = JSON.parse(line)
  if (entry.kind === 'role') roles.push(entry.role)
  else if (entry.kind === 'call') calls.push(entry)
}

const list = (v) => (Array.isArray(v) ? v : v === undefined ? [] : [v])
const glob = (pattern) =>
  new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$')

// Every grant, by role, statement and action: used when some allowed call
// of a stack with that role used that statement for that action. And every
// resource a statement names must be the resource of some such call (a
// mistyped or forgotten ARN shows as unused).
const grants = new Map()
const resources = new Map()
for (const role of roles) {
  const own = calls.filter((c) => c.stack === role.stack && c.role === role.logical_id && c.decision === 'Allowed')
  for (const statement of role.policy.Statement) {
    if (statement.Effect !== 'Allow') continue
    const used = own.filter((c) => c.statements.includes(statement.Sid))
    for (const action of list(statement.Action)) {
      const key = `${role.logical_id}/${statement.Sid}/${action}`
      const grant = grants.get(key) ?? { role: role.logical_id, sid: statement.Sid, action, exercised: false }
      grants.set(key, grant)
      grant.exercised ||= used.some((c) => c.action === action)
    }
    list(statement.Resource).forEach((resource, position) => {
      const key = `${role.logical_id}/${statement.Sid}/${position}`
      const entry = resources.get(key) ?? {
        role: role.logical_id,
        sid: statement.Sid,
        actions: list(statement.Action),
        resource,
        exercised: false
      }
      resources.set(key, entry)
      entry.exercised ||= used.some((c) => glob(resource).test(c.resource))
    })
  }
}

const problems = []
const seen = new Set(roles.map((r) => r.logical_id))
for (const role of templateRoles) {
  if (!seen.has(role)) problems.push(`${role}: no test ran a stack with this role, so none of its grants was checked`)
}
for (const c of calls) {
  if (c.decision !== 'Allowed') {
    problems.push(
      `denied: ${c.functions.join(',')} (${c.role}) ${c.action} on ${c.resource}${c.error ? `: ${c.error}` : ''}`
    )
  }
}
const reasonFor = (g) =>
  Object.entries(reasons).find(([pattern]) => glob(pattern).test(`${g.role}/${g.sid}/${g.action}`))?.[1]
const usedReasons = new Set()
let exercised = 0
let reasoned = 0
for (const g of grants.values()) {
  const reason = reasonFor(g)
  if (g.exercised) {
    exercised++
    continue
  }
  if (reason) reasoned++
  if (!reason) {
    problems.push(`unused grant: ${g.role} statement ${g.sid} allows ${g.action}, which no test call used (use it in a test, remove it, or give its reason in infra/iam/unexercised.json)`)
  } else {
    usedReasons.add(Object.keys(reasons).find((p) => reasons[p] === reason))
  }
}
for (const r of resources.values()) {
  if (r.exercised) continue
  const reason = r.actions.map((action) => reasonFor({ ...r, action })).find(Boolean)
  if (!reason) {
    problems.push(`unused resource: ${r.role} statement ${r.sid} names ${r.resource}, on which no test call used it`)
  }
}
for (const pattern of Object.keys(reasons)) {
  if (!usedReasons.has(pattern)) problems.push(`infra/iam/unexercised.json lists ${pattern}, but every grant it matches was used (or none exists): remove it`)
}

const byRole = new Map()
for (const c of calls) {
  const k = `${c.role}`
  const actions = byRole.get(k) ?? new Map()
  actions.set(c.action, (actions.get(c.action) ?? 0) + 1)
  byRole.set(k, actions)
}
for (const [role, actions] of [...byRole].sort()) {
  console.log(`  ${role}: ${[...actions].sort().map(([a, n]) => `${a} ×${n}`).join(', ')}`)
}
console.log(
  `IAM: ${calls.length} calls checked against ${seen.size} roles; ${exercised} of ${grants.size} grants used, ${reasoned} listed with a reason`
)
if (problems.length) {
  for (const p of problems) console.error(`IAM: ${p}`)
  process.exit(1)
}
