import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findFindings } from '../../src/fleet/posture/findings.js';
import { groupByRole } from '../../src/fleet/posture/roles.js';
import { summarize } from '../../src/fleet/posture/summary.js';
import { discoverDocument, renderDiscover, renderRoles, rolesDocument } from '../../src/report/fleet.js';
import {
  discoverDocumentSchema,
  fleetJsonSchema,
  rolesDocumentSchema,
} from '../../src/report/fleet-schema.js';
import { smallInventory, tinyRunStats } from '../support/fleet-records.js';

const inventory = smallInventory();
const stats = tinyRunStats();

describe('fleet JSON schema', () => {
  it('docs/fleet-json-schema.json is the schema generated from src/report/fleet-schema.ts', () => {
    const file = JSON.parse(
      readFileSync(new URL('../../docs/fleet-json-schema.json', import.meta.url), 'utf8'),
    );
    expect(file).toEqual(JSON.parse(JSON.stringify(fleetJsonSchema())));
  });

  it('the discover and roles documents match their schemas', () => {
    const doc = discoverDocument(inventory, summarize(inventory), findFindings(inventory), stats);
    expect(() => discoverDocumentSchema.parse(JSON.parse(renderDiscover(doc, 'json')))).not.toThrow();
    const roles = rolesDocument(inventory, groupByRole(inventory.instances), stats);
    expect(() =>
      rolesDocumentSchema.parse(JSON.parse(renderRoles(roles, 'json', inventory.instances))),
    ).not.toThrow();
  });

  it('refuses a document with an unknown or missing key', () => {
    const doc = JSON.parse(
      renderDiscover(
        discoverDocument(inventory, summarize(inventory), findFindings(inventory), stats),
        'json',
      ),
    ) as Record<string, unknown>;
    expect(discoverDocumentSchema.safeParse({ ...doc, extra: 1 }).success).toBe(false);
    const { instances: _gone, ...missing } = doc;
    expect(discoverDocumentSchema.safeParse(missing).success).toBe(false);
  });
});
