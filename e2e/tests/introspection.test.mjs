// Codegen tools build their schema from introspection: the round trip must
// give back exactly the committed SDL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GraphQLSchema, buildClientSchema, buildSchema, getIntrospectionQuery, lexicographicSortSchema, printSchema } from 'graphql';
import { startBrook, token, gql, repo } from '../lib/brook.mjs';

let server;
before(async () => { server = await startBrook(); });
after(async () => { await server?.remove(); });

test('introspection round-trips to the committed SDL', async () => {
  const res = await gql(server, token('codegen'), getIntrospectionQuery({ descriptions: true, inputValueDeprecation: true }));
  assert.equal(res.errors, undefined, JSON.stringify(res.errors));
  // Besides the committed schema, the server declares the standard @defer
  // directive (gqlgen's; without multipart transport it answers inline).
  const introspected = buildClientSchema(res.data);
  assert.ok(introspected.getDirective('defer'), 'the server declares @defer');
  const served = lexicographicSortSchema(new GraphQLSchema({
    ...introspected.toConfig(),
    directives: introspected.getDirectives().filter((d) => d.name !== 'defer'),
  }));
  const dir = join(repo, 'schema');
  const sdl = readdirSync(dir).filter((f) => f.endsWith('.graphqls')).sort().map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
  const committed = lexicographicSortSchema(buildSchema(sdl));
  assert.equal(printSchema(served), printSchema(committed));
});
