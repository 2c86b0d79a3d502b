/**
 * A small JSON Schema (draft-07) validator for the subset the Helm chart's values.schema.json uses:
 * type, properties, required, additionalProperties (boolean or schema), items, enum, pattern,
 * minLength, minimum, maximum. No validator is installed (ajv is not a dependency), and Helm itself
 * only validates when helm runs, which it does not here.
 *
 * Any other validation keyword makes it THROW rather than pass silently: a schema feature this
 * validator does not check must not look checked.
 */

export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  minimum?: number;
  maximum?: number;
  [annotation: string]: unknown;
};

const CHECKED = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'pattern',
  'minLength',
  'minimum',
  'maximum',
]);
/** Keywords that describe and never constrain. */
const ANNOTATIONS = new Set(['$schema', '$id', '$comment', 'title', 'description', 'default', 'examples']);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'object':
      return typeOf(value) === 'object';
    default:
      return typeOf(value) === type;
  }
}

/**
 * Walks the whole schema (also branches no value reaches) and throws on a keyword this validator does
 * not check or a pattern that does not compile.
 */
export function assertSupportedSchema(schema: JsonSchema, path = '#'): void {
  for (const key of Object.keys(schema)) {
    if (!CHECKED.has(key) && !ANNOTATIONS.has(key)) {
      throw new Error(`${path}: schema keyword "${key}" is not supported by test/support/json-schema.ts`);
    }
  }
  if (schema.pattern !== undefined) new RegExp(schema.pattern, 'u');
  for (const [key, sub] of Object.entries(schema.properties ?? {})) {
    assertSupportedSchema(sub, `${path}/properties/${key}`);
  }
  if (typeof schema.additionalProperties === 'object') {
    assertSupportedSchema(schema.additionalProperties, `${path}/additionalProperties`);
  }
  if (schema.items) assertSupportedSchema(schema.items, `${path}/items`);
}

/** Errors as "<path>: <problem>", empty when `value` is valid. `path` uses dots: auth.passwordSecret.key. */
export function validate(schema: JsonSchema, value: unknown, path = '(root)'): string[] {
  for (const key of Object.keys(schema)) {
    if (!CHECKED.has(key) && !ANNOTATIONS.has(key)) {
      throw new Error(`${path}: schema keyword "${key}" is not supported by test/support/json-schema.ts`);
    }
  }
  const errors: string[] = [];
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => hasType(value, t))) {
      return [`${path}: is ${typeOf(value)}, expected ${types.join(' or ')}`];
    }
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      errors.push(`${path}: shorter than ${schema.minLength}`);
    }
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
      errors.push(`${path}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
    }
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum)
      errors.push(`${path}: below ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum)
      errors.push(`${path}: above ${schema.maximum}`);
  }
  if (hasType(value, 'object')) {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) {
      if (!(key in obj)) errors.push(`${path}: missing required "${key}"`);
    }
    for (const [key, child] of Object.entries(obj)) {
      const childPath = path === '(root)' ? key : `${path}.${key}`;
      const sub = schema.properties?.[key];
      if (sub) errors.push(...validate(sub, child, childPath));
      else if (schema.additionalProperties === false) errors.push(`${childPath}: unknown key`);
      else if (typeof schema.additionalProperties === 'object') {
        errors.push(...validate(schema.additionalProperties, child, childPath));
      }
    }
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => errors.push(...validate(schema.items!, item, `${path}[${i}]`)));
  }
  return errors;
}
