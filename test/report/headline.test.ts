// The report's summary cards lead with the planner's objective: estimated time where the hardware description
// has bandwidth figures (a plan that adds GMA to save time must not read as "the optimizer made it worse").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headlineCards } from '../../src/report/html.js';

test('with time estimates: time saved first, then the GMA change explained, then GMA totals', () => {
  // The h100 case: 23.5% more GMA for 19.9% less time.
  const cards = headlineCards({ gma: 1.235e6, gmaUnfused: 1e6, saved: -0.235e6, savedPercent: -23.5, timeUs: 80.1, timeUsUnfused: 100 });
  assert.deepEqual(cards.map((c) => c[0]), ['19.9% less', '+23.5%', '1.235M']);
  assert.match(cards[0][1], /^estimated conv time, the planner's objective: 80\.1 us \(unfused 100\.0 us\)$/);
  assert.match(cards[1][1], /^GMA \(235\.0K elements more: the time model accepts them for fewer, faster passes\)$/);
  assert.match(cards[2][1], /unfused 1\.000M elements/);
});

test('without time estimates: GMA saved leads', () => {
  const cards = headlineCards({ gma: 800, gmaUnfused: 1000, saved: 200, savedPercent: 20 });
  assert.deepEqual(cards.map((c) => c[0]), ['20.0%', '800']);
  assert.match(cards[0][1], /^less GMA \(200 elements saved\)$/);
});
