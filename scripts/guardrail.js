'use strict';
// The stage's Bedrock guardrail, from its deploy parameters, for serverless.yml:
//   ${file(./scripts/guardrail.js):mode}                none | create | existing (validated)
//   ${file(./scripts/guardrail.js):existingId}          the existing guardrail's ID ("" unless
//                                                       existing), from an ID or an ARN
//   ${file(./scripts/guardrail.js):existingVersion}     its version: guardrailVersion, or DRAFT
//                                                       ("" unless existing)
//   ${file(./scripts/guardrail.js):enabled}             "true" when the stage has a guardrail
//                                                       (dashboards/render.js keeps its widgets)
//   ${file(./scripts/guardrail.js):versionDescription}  the GuardrailVersion's description, with
//                                                       a hash of the Guardrail's properties
// Parameters read: guardrail, guardrailId, guardrailVersion, guardrailStreamMode,
// guardrailPromptAttackStrength, guardrailContentFilterStrength; the stage's region.
//
// Why here and not only in CloudFormation: a condition cannot test a prefix or a pattern, so
// "existing needs an ID", "an ID without `guardrail=existing` does nothing" and "an ARN of
// another region" can only be refused at package time — before anything is deployed, like
// scripts/bedrock-models.js does for the models. The template rebuilds the ARN from the ID in
// its own account and region (IAM and CHATBOT_GUARDRAIL_ID), so an ARN given here must be of
// the stage's region; its account is not known at package time (it must be the stage's).
//
// The version description: AWS::Bedrock::GuardrailVersion snapshots the guardrail's DRAFT when
// it is created, and its properties are create-only, so a new version is cut only when the
// description changes. Hashing the Guardrail's properties into it cuts one on every change of
// the policies (a parameter or an edit of serverless.yml) and never otherwise, so the functions
// always run a fixed version that is exactly what the template says.

const crypto = require('crypto');

const MODES = ['none', 'create', 'existing'];
const STREAM_MODES = ['sync', 'async'];
const STRENGTHS = ['NONE', 'LOW', 'MEDIUM', 'HIGH'];
// arn:aws:bedrock:us-east-2:123456789012:guardrail/abcd1234efgh (GuardrailArn's own pattern,
// any partition), or the ID alone (GuardrailId's pattern).
const GUARDRAIL_ARN = /^arn:aws(-[a-z-]+)?:bedrock:([a-z0-9-]{1,20}):[0-9]{12}:guardrail\/([a-z0-9]+)$/;
const GUARDRAIL_ID = /^[a-z0-9]{1,64}$/;
const VERSION = /^(DRAFT|[1-9][0-9]{0,7})$/;

class GuardrailConfigError extends Error {
  constructor(message) {
    super(`guardrail configuration: ${message} (see docs/deploy.md, "Guardrail")`);
    this.name = 'GuardrailConfigError';
  }
}

/** The existing guardrail's ID from `guardrailId` (an ID, or an ARN in `region`). */
function existingId(id, region) {
  if (GUARDRAIL_ID.test(id)) return id;
  const arn = GUARDRAIL_ARN.exec(id);
  if (!arn) {
    throw new GuardrailConfigError(
      `guardrail=existing needs guardrailId, the guardrail's ID (aws bedrock list-guardrails) or ` +
        `ARN (arn:aws:bedrock:<region>:<account>:guardrail/<id>), got "${id}"`
    );
  }
  if (region && arn[2] !== region) {
    throw new GuardrailConfigError(
      `guardrailId ${id} is in ${arn[2]} but the stage deploys to ${region}: Bedrock applies a ` +
        `guardrail of the calling region`
    );
  }
  return arn[3];
}

/** The parameters, checked together; returns the mode. */
function validate({ mode, id, region, version, streamMode, promptAttackStrength, contentFilterStrength }) {
  if (!MODES.includes(mode)) {
    throw new GuardrailConfigError(`guardrail "${mode}" must be one of ${MODES.join(', ')}`);
  }
  if (mode === 'existing') {
    existingId(id, region);
  } else if (id !== '') {
    throw new GuardrailConfigError(
      `guardrailId is set but guardrail is "${mode}": it is used only with guardrail=existing`
    );
  }
  if (version !== '' && !VERSION.test(version)) {
    throw new GuardrailConfigError(
      `guardrailVersion "${version}" must be empty, DRAFT or a version number (1-99999999)`
    );
  }
  if (mode !== 'existing' && version !== '') {
    throw new GuardrailConfigError(
      `guardrailVersion is set but guardrail is "${mode}": it is used only with guardrail=existing ` +
        `(a created guardrail runs the version the stack cuts of it)`
    );
  }
  if (!STREAM_MODES.includes(streamMode)) {
    throw new GuardrailConfigError(
      `guardrailStreamMode "${streamMode}" must be one of ${STREAM_MODES.join(', ')}`
    );
  }
  for (const [name, value] of [
    ['guardrailPromptAttackStrength', promptAttackStrength],
    ['guardrailContentFilterStrength', contentFilterStrength],
  ]) {
    if (!STRENGTHS.includes(value)) {
      throw new GuardrailConfigError(`${name} "${value}" must be one of ${STRENGTHS.join(', ')}`);
    }
  }
  return mode;
}

/** A stable text of a value: object keys sorted, so the hash follows content, not layout. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The GuardrailVersion description for the Guardrail's `properties` (at most 200 characters). */
function describeVersion(serviceName, properties) {
  const hash = crypto.createHash('sha256').update(canonical(properties)).digest('hex').slice(0, 16);
  return `${serviceName}: the guardrail's policies as deployed (config ${hash})`;
}

async function readParams(resolveVariable) {
  const get = async (name, fallback) =>
    String((await resolveVariable(`param:${name}, '${fallback}'`)) ?? fallback).trim();
  return {
    mode: await get('guardrail', 'none'),
    id: await get('guardrailId', ''),
    region: await resolveVariable('self:provider.region'),
    version: await get('guardrailVersion', ''),
    streamMode: await get('guardrailStreamMode', 'sync'),
    promptAttackStrength: await get('guardrailPromptAttackStrength', 'HIGH'),
    contentFilterStrength: await get('guardrailContentFilterStrength', 'MEDIUM'),
  };
}

module.exports = {
  validate,
  describeVersion,
  async mode({ resolveVariable }) {
    return validate(await readParams(resolveVariable));
  },
  async existingId({ resolveVariable }) {
    const p = await readParams(resolveVariable);
    return validate(p) === 'existing' ? existingId(p.id, p.region) : '';
  },
  async existingVersion({ resolveVariable }) {
    const p = await readParams(resolveVariable);
    return validate(p) === 'existing' ? p.version || 'DRAFT' : '';
  },
  async enabled({ resolveVariable }) {
    return validate(await readParams(resolveVariable)) === 'none' ? 'false' : 'true';
  },
  async versionDescription({ resolveVariable }) {
    const service = await resolveVariable('self:custom.serviceName');
    const properties = await resolveVariable('self:resources.Resources.Guardrail.Properties');
    return describeVersion(service, properties);
  },
};
