'use strict';
// The models a stage may call, from its deploy parameters, for serverless.yml:
//   ${file(./scripts/bedrock-models.js):iamResources}  Bedrock ARNs for the IAM policy
//   ${file(./scripts/bedrock-models.js):modelIds}      the model / inference-profile ids
//   ${file(./scripts/bedrock-models.js):metricFilter}  a SEARCH filter on AWS/Bedrock ModelId
// Parameters read: modelId, modelVariants (CHATBOT_MODEL_VARIANTS syntax,
// `name=modelId:weight,…`), fallbackModelId, bedrockRouteRegions.
//
// Hand-written because neither Serverless nor CloudFormation can loop over a list: adding a
// variant must be a parameter change, and the IAM policy must name exactly the configured
// models. A bad value fails `osls package` here, before anything is deployed.

// Geography prefix of a cross-region inference profile id -> region-name prefix it routes within.
const GEOGRAPHIES = {
  us: 'us-',
  eu: 'eu-',
  apac: 'ap-',
  ca: 'ca-',
  jp: 'ap-northeast-',
  au: 'ap-southeast-',
  'us-gov': 'us-gov-',
};

class ModelConfigError extends Error {
  constructor(message) {
    super(`model configuration: ${message} (see docs/deploy.md, "Models and variants")`);
    this.name = 'ModelConfigError';
  }
}

function splitList(value) {
  return String(value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** `name=modelId:weight,…` -> [{ name, modelId, weight }]. The model id itself contains `:`
 * (`us.amazon.nova-micro-v1:0`), so the weight is what follows the last one. */
function parseVariants(spec) {
  const variants = splitList(spec).map((item) => {
    const eq = item.indexOf('=');
    const colon = item.lastIndexOf(':');
    if (eq <= 0 || colon <= eq + 1) {
      throw new ModelConfigError(`variant "${item}" is not name=modelId:weight`);
    }
    const name = item.slice(0, eq);
    const modelId = item.slice(eq + 1, colon);
    const weightText = item.slice(colon + 1);
    // The same rules as the service's parser (crates/service/src/variants.rs), so a bad value fails here.
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(name)) {
      throw new ModelConfigError(`variant name "${name}" must be 1-32 of A-Z a-z 0-9 _ -`);
    }
    const weight = /^\d+$/.test(weightText) ? Number(weightText) : NaN;
    if (!(weight >= 1 && weight <= 10000)) {
      throw new ModelConfigError(`variant "${name}" weight "${weightText}" must be 1 to 10000`);
    }
    return { name, modelId, weight };
  });
  const seen = new Set();
  for (const v of variants) {
    if (seen.has(v.name)) throw new ModelConfigError(`variant name "${v.name}" appears twice`);
    seen.add(v.name);
  }
  return variants;
}

/** Geography of an inference-profile id (`us.amazon.nova-micro-v1:0` -> `us`), or null for a
 * plain foundation-model id (`amazon.nova-micro-v1:0`). */
function geographyOf(modelId) {
  const prefix = modelId.split('.')[0];
  if (prefix === 'global') {
    throw new ModelConfigError(
      `"${modelId}" is a global inference profile; this template scopes IAM to one geography, ` +
        'use a geographic profile (us., eu., apac., …) instead'
    );
  }
  return Object.hasOwn(GEOGRAPHIES, prefix) ? prefix : null;
}

/** Every model id the stage may call: the variants' (or the single model) plus the fallback. */
function configuredModels({ modelId, modelVariants, fallbackModelId }) {
  const variants = parseVariants(modelVariants);
  const ids = variants.length > 0 ? variants.map((v) => v.modelId) : [String(modelId ?? '').trim()];
  const fallback = String(fallbackModelId ?? '').trim();
  if (fallback) ids.push(fallback);
  for (const id of ids) {
    if (!/^[A-Za-z0-9.:_-]+$/.test(id)) throw new ModelConfigError(`bad model id "${id}"`);
  }
  return [...new Set(ids)];
}

/** Bedrock ARNs for bedrock:InvokeModel*: for a profile, the profile in the deploy region and
 * the foundation model in every region the profile routes to; for a plain model id, that model
 * in the deploy region. Returned as Fn::Sub so partition, region and account stay CloudFormation's. */
function iamResourcesFor(models, routeRegions, deployRegion) {
  const arns = [];
  for (const id of models) {
    const geo = geographyOf(id);
    if (geo == null) {
      arns.push(`arn:\${AWS::Partition}:bedrock:\${AWS::Region}::foundation-model/${id}`);
      continue;
    }
    const regionPrefix = GEOGRAPHIES[geo];
    const inGeo = (r) => r.startsWith(regionPrefix) && (geo !== 'us' || !r.startsWith('us-gov-'));
    if (deployRegion && !inGeo(deployRegion)) {
      throw new ModelConfigError(
        `"${id}" is a ${geo} inference profile but the stage deploys to ${deployRegion}`
      );
    }
    const regions = routeRegions.filter(inGeo);
    if (regions.length === 0) {
      throw new ModelConfigError(
        `bedrockRouteRegions (${routeRegions.join(',')}) lists no ${geo} region for "${id}"`
      );
    }
    const foundationId = id.slice(geo.length + 1);
    arns.push(`arn:\${AWS::Partition}:bedrock:\${AWS::Region}:\${AWS::AccountId}:inference-profile/${id}`);
    for (const r of regions) {
      arns.push(`arn:\${AWS::Partition}:bedrock:${r}::foundation-model/${foundationId}`);
    }
  }
  return [...new Set(arns)].map((arn) => ({ 'Fn::Sub': arn }));
}

async function readParams(resolveVariable) {
  const get = async (name) => resolveVariable(`param:${name}, ''`);
  return {
    modelId: await get('modelId'),
    modelVariants: await get('modelVariants'),
    fallbackModelId: await get('fallbackModelId'),
    routeRegions: splitList(await get('bedrockRouteRegions')),
    region: await resolveVariable('self:provider.region'),
  };
}

module.exports = {
  parseVariants,
  configuredModels,
  iamResourcesFor,
  async modelIds({ resolveVariable }) {
    return configuredModels(await readParams(resolveVariable));
  },
  async iamResources({ resolveVariable }) {
    const p = await readParams(resolveVariable);
    return iamResourcesFor(configuredModels(p), p.routeRegions, p.region);
  },
  async metricFilter({ resolveVariable }) {
    const models = configuredModels(await readParams(resolveVariable));
    return `(${models.map((m) => `ModelId="${m}"`).join(' OR ')})`;
  },
};
