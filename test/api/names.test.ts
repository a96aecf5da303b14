import t from 'tap'
import {
  isDNS1035Label,
  isDNS1123Label,
  isDNS1123Subdomain,
  isQualifiedName,
  isValidLabelValue,
  validateAnnotations,
  validateLabels,
  validateObjectMeta,
} from '../../src/api/names.js'

t.test('DNS-1123 labels: lower-case alphanumerics and dashes, at most 63', async (t) => {
  for (const ok of ['a', 'my-name', '123-abc', 'a'.repeat(63)]) t.same(isDNS1123Label(ok), [], ok)
  for (const bad of ['', 'A', '-a', 'a-', 'a.b', 'a_b', 'ä']) t.equal(isDNS1123Label(bad).length, 1, bad)
  t.same(isDNS1123Label('a'.repeat(64)), ['must be no more than 63 characters'])
  t.match(isDNS1123Label('My')[0], /^a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character \(e\.g\. 'my-name',  or '123-abc', regex used for validation is/)
})

t.test('DNS-1123 subdomains: dot-separated labels, at most 253', async (t) => {
  for (const ok of ['example.com', 'a', 'a.b-c.d', 'x'.repeat(253)]) t.same(isDNS1123Subdomain(ok), [], ok)
  for (const bad of ['', '.a', 'a.', 'a..b', 'Example.com', 'a_b']) t.equal(isDNS1123Subdomain(bad).length, 1, bad)
  t.same(isDNS1123Subdomain('x'.repeat(254)), ['must be no more than 253 characters'])
})

t.test('DNS-1035 labels start with a letter', async (t) => {
  t.same(isDNS1035Label('my-svc'), [])
  t.equal(isDNS1035Label('1svc').length, 1)
  t.match(isDNS1035Label('1svc')[0], /start with an alphabetic character/)
})

t.test('qualified names (label keys): optional DNS prefix and a name of at most 63', async (t) => {
  for (const ok of ['app', 'app.kubernetes.io/name', 'MyName', 'my_name', 'a.b/C-d_e.f', 'k8s.io/x']) t.same(isQualifiedName(ok), [], ok)
  t.same(isQualifiedName('/name'), ['prefix part must be non-empty'])
  t.same(isQualifiedName('example.com/'), ['name part must be non-empty'])
  t.same(isQualifiedName(''), ['name part must be non-empty'])
  t.same(isQualifiedName('a'.repeat(64)), ['name part must be no more than 63 characters'])
  t.match(isQualifiedName('Bad_Prefix/name'), [/^prefix part a lowercase RFC 1123 subdomain/])
  t.match(isQualifiedName('a/b/c'), [/with an optional DNS subdomain prefix and '\/' \(e\.g\. 'example\.com\/MyName'\)$/])
  t.match(isQualifiedName('-x'), [/^name part must consist of alphanumeric characters/])
})

t.test('label values: empty or alphanumerics at the ends, -_. inside, at most 63', async (t) => {
  for (const ok of ['', 'MyValue', 'my_value', '12345', 'a.b-c_d']) t.same(isValidLabelValue(ok), [], ok)
  for (const bad of ['-a', 'a-', 'a b', 'a/b']) t.equal(isValidLabelValue(bad).length, 1, bad)
  t.same(isValidLabelValue('v'.repeat(64)), ['must be no more than 63 characters'])
})

t.test('labels and annotations maps', async (t) => {
  t.same(validateLabels({ app: 'web', 'app.kubernetes.io/name': 'x' }, 'metadata.labels'), [])
  const errs = validateLabels({ 'bad key!': 'ok', good: 'bad value!' }, 'metadata.labels')
  t.equal(errs.length, 2)
  t.same(errs.map((e) => [e.field, e.type, e.value]), [
    ['metadata.labels', 'FieldValueInvalid', 'bad key!'],
    ['metadata.labels', 'FieldValueInvalid', 'bad value!'],
  ])
  t.match(errs[0].message, /^Invalid value: "bad key!": name part must consist/)
  t.same(validateLabels({ n: 3 }, 'metadata.labels').map((e) => e.type), ['FieldValueTypeInvalid'])
  t.same(validateLabels('x', 'metadata.labels').map((e) => e.type), ['FieldValueTypeInvalid'])
  t.same(validateLabels({ empty: null }, 'metadata.labels'), [], 'a null value reads as the empty string, as in Kubernetes')
  t.same(validateAnnotations({ 'Example.COM/Some-Key': 'any value, even with spaces' }, 'metadata.annotations'), [])
  const big = validateAnnotations({ a: 'x'.repeat(256 * 1024) }, 'metadata.annotations')
  t.same(big.map((e) => [e.field, e.type]), [['metadata.annotations', 'FieldValueTooLong']])
  t.equal(big[0].message, 'Too long: may not be more than 262144 bytes')
  t.same(validateAnnotations({ a: 'x'.repeat(256 * 1024 - 1) }, 'metadata.annotations'), [])
})

t.test('object metadata', async (t) => {
  const sub = isDNS1123Subdomain
  t.same(validateObjectMeta({ name: 'web', namespace: 'default', labels: { app: 'web' } }, 'metadata', true, sub), [])
  t.same(validateObjectMeta({ generateName: 'web-' }, 'metadata', true, sub), [])
  t.same(validateObjectMeta({}, 'metadata', true, sub).map((e) => [e.field, e.type, e.message]), [
    ['metadata.name', 'FieldValueRequired', 'Required value: name or generateName is required'],
  ])
  const errs = validateObjectMeta({ name: 'Web', namespace: 'My_NS', labels: { app: '-' } }, 'metadata', true, sub)
  t.same(errs.map((e) => e.field), ['metadata.name', 'metadata.namespace', 'metadata.labels'])
  t.same(validateObjectMeta({ name: 'n1', namespace: 'x' }, 'metadata', false, sub).map((e) => [e.field, e.type]), [['metadata.namespace', 'FieldValueForbidden']])
  t.same(validateObjectMeta({ name: 'a.b' }, 'metadata', true, isDNS1123Label).map((e) => e.field), ['metadata.name'])
  t.same(validateObjectMeta(null, 'metadata', true, sub).map((e) => e.type), ['FieldValueRequired'])
  t.same(validateObjectMeta([], 'metadata', true, sub).map((e) => e.type), ['FieldValueTypeInvalid'])
  t.same(validateObjectMeta({ name: 5 }, 'metadata', true, sub).map((e) => [e.field, e.type]), [['metadata.name', 'FieldValueTypeInvalid']])
})
