/**
 * Properties of the normalisers in src/reconcile/normalise.ts, on arbitrary JSON (inspect output is
 * data from outside): normalising twice is normalising once, set-like readers ignore order, and the
 * readers of engine objects (mounts, payload references, health checks) are stable when their own
 * result is written back in the engine's form.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  capabilityName,
  capabilitySet,
  cloneJson,
  compact,
  constraintText,
  envList,
  float32,
  healthcheck,
  mountSet,
  nonEmptyString,
  normalMount,
  payloadRefSet,
  positiveNumber,
  sortedData,
  stringList,
  stringMap,
  stringSet,
  unlessDefault,
  type NormalMount,
  type NormalPayloadRef,
} from '../../src/reconcile/normalise.js';

const RUNS = Number(process.env.SWARMKEEPER_FUZZ_RUNS ?? 200);
const runs = { numRuns: RUNS };

/** Strings that look like what the readers parse: env entries, capabilities, constraints, with odd spacing. */
const textish = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc
    .tuple(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,6}$/), fc.string({ maxLength: 6 }))
    .map(([k, v]) => `${k}=${v}`),
  fc.constantFrom('NET_ADMIN', 'cap_net_admin', ' CAP_SYS_ADMIN ', 'all', 'ALL', 'ß', 'ı'),
  fc
    .tuple(
      fc.constantFrom('node.role', 'node.labels.zone', 'engine.labels.os'),
      fc.constantFrom('==', '!=', ' == ', '  !=', '== '),
      fc.constantFrom('manager', 'worker', 'a == b', ' x != y '),
    )
    .map(([a, op, b]) => `${a}${op}${b}`),
);
/** JSON as inspect could hand it over: mostly lists of strings, sometimes anything at all. */
const listish = fc.oneof(
  fc.array(textish, { maxLength: 8 }),
  fc.array(fc.oneof(textish, fc.jsonValue({ maxDepth: 2 })), { maxLength: 8 }),
  fc.jsonValue({ maxDepth: 3 }),
);
const mapish = fc.oneof(
  fc.dictionary(textish, fc.oneof(textish, fc.jsonValue({ maxDepth: 1 })), { maxKeys: 6 }),
  fc.jsonValue({ maxDepth: 3 }),
);

const idempotent = <T>(f: (x: unknown) => T, arbitrary: fc.Arbitrary<unknown>): void =>
  fc.assert(
    fc.property(arbitrary, (x) => {
      const once = f(x);
      expect(f(once)).toEqual(once);
    }),
    runs,
  );

const orderFree = <T>(f: (x: unknown) => T, arbitrary: fc.Arbitrary<unknown[]>): void =>
  fc.assert(
    fc.property(
      arbitrary.chain((items) =>
        fc.tuple(fc.constant(items), fc.shuffledSubarray(items, { minLength: items.length })),
      ),
      ([items, shuffled]) => {
        expect(f(shuffled)).toEqual(f(items));
      },
    ),
    runs,
  );

describe('normalising twice is normalising once', () => {
  it('stringList', () => idempotent(stringList, listish));
  it('stringSet', () => idempotent((x) => stringSet(x), listish));
  it('stringSet of constraints', () => idempotent((x) => stringSet(x, constraintText), listish));
  it('capabilitySet', () => idempotent(capabilitySet, listish));
  it('envList', () => idempotent((x) => envList(x), listish));
  it('envList keeping some names', () =>
    idempotent((x) => envList(x, new Set(['A', 'PATH', 'LANG'])), listish));
  it('stringMap', () => idempotent(stringMap, mapish));
  it('sortedData', () => idempotent((x) => sortedData(Array.isArray(x) ? x : []), listish));
  it('compact', () =>
    idempotent(
      (x) => compact(typeof x === 'object' && x !== null ? x : {}),
      fc.dictionary(fc.string(), fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 1 }))),
    ));
  it('cloneJson', () => idempotent(cloneJson, fc.jsonValue()));

  it('capabilityName, constraintText and the scalar readers', () => {
    fc.assert(
      fc.property(textish, fc.jsonValue({ maxDepth: 1 }), (text, value) => {
        expect(capabilityName(capabilityName(text))).toBe(capabilityName(text));
        expect(constraintText(constraintText(text))).toBe(constraintText(text));
        expect(nonEmptyString(nonEmptyString(value))).toEqual(nonEmptyString(value));
        expect(positiveNumber(positiveNumber(value))).toEqual(positiveNumber(value));
        expect(unlessDefault(unlessDefault(value, 0), 0)).toEqual(unlessDefault(value, 0));
      }),
      runs,
    );
  });

  it('float32, over the values a float32 holds and the ratios a manifest sets', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.float({ noNaN: true, noDefaultInfinity: true }),
          fc.double({ min: 0, max: 1, noNaN: true }),
        ),
        (x) => {
          const once = float32(x);
          expect(float32(once)).toBe(once);
          // And float32 is what it says: the ratio as swarmkit stores it reads the same.
          expect(float32(Math.fround(x))).toBe(once);
        },
      ),
      runs,
    );
  });
});

describe('set-like readers ignore order', () => {
  it('stringSet, capabilitySet, constraints and sortedData', () => {
    orderFree((x) => stringSet(x), fc.array(textish, { maxLength: 8 }));
    orderFree(capabilitySet, fc.array(textish, { maxLength: 8 }));
    orderFree((x) => stringSet(x, constraintText), fc.array(textish, { maxLength: 8 }));
    orderFree((x) => sortedData(x as unknown[]), fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 6 }));
  });

  it('stringMap ignores the order of its keys', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string(), fc.string()), { maxLength: 6 }), (entries) => {
        const unique = [...new Map(entries)];
        expect(stringMap(Object.fromEntries([...unique].reverse()))).toEqual(
          stringMap(Object.fromEntries(unique)),
        );
      }),
      runs,
    );
  });
});

// Engine objects, part valid and part garbage.
const maybe = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 4, arbitrary }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) });
const engineMount = fc.record(
  {
    Type: maybe(fc.constantFrom('volume', 'bind', 'tmpfs', 'npipe', '')),
    Source: maybe(fc.string({ maxLength: 12 })),
    Target: maybe(fc.constantFrom('/a', '/b', '/srv/data', '')),
    ReadOnly: maybe(fc.boolean()),
    VolumeOptions: maybe(
      fc.record(
        {
          NoCopy: maybe(fc.boolean()),
          Labels: maybe(
            fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
          ),
          DriverConfig: maybe(
            fc.record(
              {
                Name: maybe(fc.constantFrom('', 'local', 'nfs')),
                Options: maybe(
                  fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
                ),
              },
              { requiredKeys: [] },
            ),
          ),
        },
        { requiredKeys: [] },
      ),
    ),
    BindOptions: maybe(
      fc.record({ Propagation: maybe(fc.constantFrom('rprivate', 'rslave', '')) }, { requiredKeys: [] }),
    ),
    TmpfsOptions: maybe(
      fc.record({ SizeBytes: maybe(fc.nat()), Mode: maybe(fc.nat({ max: 0o7777 })) }, { requiredKeys: [] }),
    ),
  },
  { requiredKeys: [] },
);

/** A normalised mount written back as the engine's Mount object. */
function engineFormOfMount(m: NormalMount): Record<string, unknown> {
  return {
    Type: m.type,
    Target: m.target,
    ...(m.source !== undefined && { Source: m.source }),
    ...(m.readOnly && { ReadOnly: true }),
    ...(m.volume && {
      VolumeOptions: {
        ...(m.volume.noCopy && { NoCopy: true }),
        ...(m.volume.labels && { Labels: m.volume.labels }),
        ...((m.volume.driver !== undefined || m.volume.driverOpts !== undefined) && {
          DriverConfig: {
            ...(m.volume.driver !== undefined && { Name: m.volume.driver }),
            ...(m.volume.driverOpts && { Options: m.volume.driverOpts }),
          },
        }),
      },
    }),
    ...(m.propagation !== undefined && { BindOptions: { Propagation: m.propagation } }),
    ...(m.tmpfs && {
      TmpfsOptions: {
        ...(m.tmpfs.sizeBytes !== undefined && { SizeBytes: m.tmpfs.sizeBytes }),
        ...(m.tmpfs.mode !== undefined && { Mode: m.tmpfs.mode }),
      },
    }),
  };
}

function engineFormOfRef(ref: NormalPayloadRef, kind: 'Config' | 'Secret'): Record<string, unknown> {
  return { [`${kind}Name`]: ref.name, File: { Name: ref.file, UID: ref.uid, GID: ref.gid, Mode: ref.mode } };
}

const engineRef = (kind: 'Config' | 'Secret') =>
  fc.record(
    {
      [`${kind}Name`]: maybe(fc.constantFrom('conf-0badc0de', 'secret-5ec7e700', 'x')),
      [`${kind}ID`]: fc.string({ maxLength: 6 }),
      File: maybe(
        fc.record(
          {
            Name: maybe(fc.constantFrom('', 'app.conf', '/etc/app.conf', 'x/y')),
            UID: maybe(fc.constantFrom('', '0', '1000')),
            GID: maybe(fc.constantFrom('', '0', '100')),
            Mode: maybe(fc.constantFrom(0o444, 0o400, 0)),
          },
          { requiredKeys: [] },
        ),
      ),
    },
    { requiredKeys: [] },
  );

describe('readers of engine objects are stable through the engine form', () => {
  it('normalMount and mountSet: read, write back, read again', () => {
    fc.assert(
      fc.property(fc.array(maybe(engineMount), { maxLength: 5 }), (mounts) => {
        const once = mountSet(mounts);
        expect(mountSet(once?.map(engineFormOfMount))).toEqual(once);
        for (const raw of mounts) {
          const m = normalMount(raw);
          if (m !== undefined) expect(normalMount(engineFormOfMount(m))).toEqual(m);
        }
      }),
      runs,
    );
  });

  it('mountSet ignores order', () => {
    orderFree(mountSet, fc.array(maybe(engineMount), { maxLength: 5 }));
  });

  it('payloadRefSet: read, write back, read again, for configs and secrets', () => {
    for (const kind of ['Config', 'Secret'] as const) {
      fc.assert(
        fc.property(fc.array(maybe(engineRef(kind)), { maxLength: 4 }), (refs) => {
          const once = payloadRefSet(refs, kind);
          expect(
            payloadRefSet(
              once?.map((r) => engineFormOfRef(r, kind)),
              kind,
            ),
          ).toEqual(once);
        }),
        runs,
      );
    }
  });

  it('healthcheck: read, write back, read again', () => {
    fc.assert(
      fc.property(
        maybe(
          fc.record(
            {
              Test: maybe(
                fc.array(fc.constantFrom('CMD', 'CMD-SHELL', 'NONE', 'true', 'curl -f x'), { maxLength: 3 }),
              ),
              Interval: maybe(fc.nat()),
              Timeout: maybe(fc.nat()),
              StartPeriod: maybe(fc.nat()),
              Retries: maybe(fc.nat({ max: 10 })),
            },
            { requiredKeys: [] },
          ),
        ),
        (raw) => {
          const once = healthcheck(raw);
          const back = once && {
            Test: once.test,
            Interval: once.interval,
            Timeout: once.timeout,
            StartPeriod: once.startPeriod,
            Retries: once.retries,
          };
          expect(healthcheck(back)).toEqual(once);
        },
      ),
      runs,
    );
  });
});
